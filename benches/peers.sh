#!/usr/bin/env bash
# Ours against pgBackRest 2.45 (Debian's package) and Barman 3.19.1, in one run on this
# machine: S3 over TLS (stunnel with a throwaway test CA in front of s3s-fs for uploads and
# of moto for downloads, as benches/run.sh splits them) and a local directory
# (ours file://, pgBackRest's posix repo). Rows: WAL archive fixed cost and 16 MiB segments,
# WAL restore, sustained archiving under load, backup and restore of a pgbench database,
# peak RSS. Prints ours / pgBackRest per row and writes benches/PEERS.md and
# benches/results-peers.json.
#
#   benches/peers.sh                  # the full run (~20 min on 2 cores)
#   BENCH_QUICK=1 benches/peers.sh    # a smoke run (scale 2, few repetitions; ~4 min)
#
# As root on Debian 12. Knobs (environment): BENCH_SCALE (pgbench scale, default 70),
# BENCH_REPS (WAL repetitions, default 7; .history 11), BENCH_BACKUP_REPS (default 2),
# BENCH_PHASES="archive restore sustained backup", BENCH_BARMAN=0 (leave Barman out),
# BENCH_SUSTAINED_STORES="s3 file", BENCH_MAX_PARALLEL=8 (ours, sustained archiving),
# BENCH_OUT=DIR, BENCH_KEEP=1 (keep the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMAND="benches/peers.sh"
[ "${BENCH_QUICK:-0}" = 1 ] && COMMAND="BENCH_QUICK=1 $COMMAND"
log() { printf '[peers] %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL and the tools run as postgres)" >&2; exit 1; }
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

harness/install.sh
missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v stunnel4 >/dev/null || missing+=(stunnel4)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
log "cargo build --release"
cargo build --release --quiet

# shellcheck source=benches/servers.sh
. benches/servers.sh
S3S_BIN=$(s3s_binary)
[ -n "$S3S_BIN" ] || { log "s3s-fs 0.14.1 did not install"; exit 1; }

bench_start peers
mkdir -p "$WORK/bin"
cp target/release/barman-cloud-{wal-archive,wal-restore,backup,restore} "$WORK/bin/"
chmod -R a+rX "$WORK/bin"

# On tmpfs when there is room: on this VM's ext4 creating files costs the server ~40 ms of
# kernel time per 16 MiB, which would make the server, not the tools, the bottleneck.
if [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -1)" -gt 8000000 ] 2>/dev/null; then
  S3S_ROOT=$(mktemp -d /dev/shm/bcrs-s3s-XXXXXX)
else
  S3S_ROOT=$WORK/s3s
fi
mkdir -p "$S3S_ROOT/bench"
PORT=$(free_port)
start_s3s "$S3S_BIN" "$S3S_ROOT" "$PORT" "$WORK/s3s.log"
make_test_ca "$WORK/tls"
TLS_PORT=$(free_port)
start_stunnel "$WORK/tls" "$TLS_PORT" "$PORT"
# Downloads come from moto: s3s-fs answers each GET ~30 ms late (a HEAD took 0.8 ms, a GET
# of 8 KiB 33 ms; the cause was not looked into), which would bill every tool per object.
curl -sf -X PUT "$BCRS_S3_ENDPOINT/bench" >/dev/null
mkdir -p "$WORK/tls-dl"
cp "$WORK/tls/"{ca.crt,server.crt,server.key} "$WORK/tls-dl/"
TLS_DL_PORT=$(free_port)
start_stunnel "$WORK/tls-dl" "$TLS_DL_PORT" "${BCRS_S3_ENDPOINT##*:}"
log "uploads: s3s-fs on 127.0.0.1:$PORT (pid $S3S_PID) behind TLS on localhost:$TLS_PORT;" \
  "downloads: moto on $BCRS_S3_ENDPOINT behind TLS on localhost:$TLS_DL_PORT"

OUT=${BENCH_OUT:-$ROOT/benches}
mkdir -p "$OUT"
SUFFIX=
[ "${BENCH_QUICK:-0}" = 1 ] && SUFFIX=-quick
/opt/bcrs/barman-venv/bin/python benches/peers.py --work "$WORK" \
  --endpoint "https://localhost:$TLS_PORT" --endpoint-plain "http://127.0.0.1:$PORT" \
  --endpoint-dl "https://localhost:$TLS_DL_PORT" --endpoint-dl-plain "$BCRS_S3_ENDPOINT" \
  --ca "$WORK/tls/ca.crt" --s3fs-root "$S3S_ROOT" --server-pid "$S3S_PID" \
  --json "$OUT/results-peers$SUFFIX.json" \
  --md "$OUT/PEERS$SUFFIX.md" --command "$COMMAND"
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
