#!/usr/bin/env bash
# Ours against Barman 3.19.1's barman-cloud-* tools, in one run on this machine: WAL archive
# (fixed cost, 16 MiB per compression), sustained archiving under pgbench, WAL restore (cold
# and --parallel), backup and restore throughput of a pgbench database, peak RSS of each
# command. Prints a table and writes benches/results.json and benches/RESULTS.md.
#
#   benches/run.sh                  # the full run (~20-25 min on 2 cores)
#   BENCH_QUICK=1 benches/run.sh    # a smoke run (scale 2, few repetitions; ~3 min)
#
# As root on Debian 12 (harness/install.sh installs PostgreSQL 15, Barman 3.19.1 and moto).
# Knobs (environment):
#   BENCH_S3=s3s-fs|moto   S3 server for uploads (archive, backup). Default s3s-fs, installed
#                          with `cargo install s3s-fs@0.14.1` when missing (moto if that
#                          fails). Downloads (wal-restore, restore) always use moto, which
#                          serves GETs ~4x faster than s3s-fs; backups are copied over byte for
#                          byte. BENCH_S3=moto puts everything on moto.
#   BENCH_S3S_TMPFS=0      keep s3s-fs's store on disk (default: on /dev/shm when it has 8 GB
#                          free; its bucket is emptied between phases)
#   BENCH_RESTORE_TMPFS=0  skip the second restore of each backup into tmpfs (default: on
#                          /dev/shm when it has 4 GB free)
#   BENCH_SCALE=N          pgbench scale of the backup database (default 70, ~1.05 GiB)
#   BENCH_REPS=N           repetitions of each WAL measurement (default 5; .history: 11)
#   BENCH_BACKUP_COMPRESSIONS="none gzip snappy lz4"   (ours and Barman)
#   BENCH_BARMAN_BACKUP_COMPRESSIONS=...               (Barman's subset; default the same)
#   BENCH_BACKUP_REPS=N    rounds of every backup + restore (default 3; quick: 1)
#   BENCH_SUSTAINED_COMPRESSION=gzip   BENCH_BACKLOG=48   BENCH_WINDOW=40 (s)
#   BENCH_LOAD_SEG_RATE=1  (WAL segments/s written by pgbench while archiving is measured)
#   BENCH_PHASES="archive restore sustained backup"   BENCH_FILE=0 (skip file:// ceilings)
#   BENCH_OUT=DIR          where results.json and RESULTS.md go (default benches/; the quick
#                          run writes results-quick.json and RESULTS-quick.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMAND="benches/run.sh"
[ "${BENCH_QUICK:-0}" = 1 ] && COMMAND="BENCH_QUICK=1 $COMMAND"
log() { printf '[run] %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL runs as postgres through runuser)" >&2; exit 1; }
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

harness/install.sh
if [ ! -x /usr/bin/time ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

log "cargo build --release"
cargo build --release --quiet

# shellcheck source=benches/servers.sh
. benches/servers.sh
S3=${BENCH_S3:-s3s-fs}
if [ "$S3" = s3s-fs ]; then
  S3S_BIN=$(s3s_binary)
  [ -n "$S3S_BIN" ] || { log "s3s-fs did not install: using moto"; S3=moto; }
fi

bench_start bench

# Our binaries where the postgres user (archive_command) can run them.
mkdir -p "$WORK/bin"
cp target/release/barman-cloud-{wal-archive,wal-restore,backup,restore,check-wal-archive} "$WORK/bin/"
chmod -R a+rX "$WORK/bin"

BUCKET=bench
if [ "$S3" = s3s-fs ]; then
  PORT=$(free_port)
  # On tmpfs when there is room: creating files on this VM's ext4 costs ~40 ms of kernel time
  # per 16 MiB (6 ms on tmpfs), which made the server, not the tools, the bottleneck.
  if [ "${BENCH_S3S_TMPFS:-1}" = 1 ] && [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -1)" -gt 8000000 ] 2>/dev/null; then
    S3S_ROOT=$(mktemp -d /dev/shm/bcrs-s3s-XXXXXX)
    S3S_FS="tmpfs"
  else
    S3S_ROOT=$WORK/s3s
    S3S_FS="disk, under /tmp"
  fi
  mkdir -p "$S3S_ROOT/$BUCKET"
  start_s3s "$S3S_BIN" "$S3S_ROOT" "$PORT" "$BCRS_RUN_DIR/s3s.log"
  ENDPOINT=http://127.0.0.1:$PORT
  log "s3s-fs 0.14.1 on $ENDPOINT (pid $S3S_PID), root $S3S_ROOT"
  # Downloads come from moto: s3s-fs serves GETs at ~0.3 GB/s, moto at ~1.1 GB/s here.
  SERVER_DESC="uploads: s3s-fs 0.14.1 (store on $S3S_FS); downloads: moto 5.2.5 (in memory; objects copied byte for byte from s3s-fs)"
else
  ENDPOINT=$BCRS_S3_ENDPOINT
  SERVER_DESC="moto 5.2.5 (in memory)"
fi
ENDPOINT_DL=$BCRS_S3_ENDPOINT
curl -sf -X PUT "$ENDPOINT_DL/$BUCKET" >/dev/null

OUT=${BENCH_OUT:-$ROOT/benches}
SUFFIX=
[ "${BENCH_QUICK:-0}" = 1 ] && SUFFIX=-quick
mkdir -p "$OUT"
/opt/bcrs/barman-venv/bin/python benches/bench.py --work "$WORK" --endpoint "$ENDPOINT" \
  --endpoint-dl "$ENDPOINT_DL" \
  --bucket "$BUCKET" --s3-server "$SERVER_DESC" --s3fs-root "$S3S_ROOT" \
  --server-pid "${S3S_PID:-$(cat "$BCRS_RUN_DIR/s3.pid")}" --server-dl-pid "$(cat "$BCRS_RUN_DIR/s3.pid")" \
  --json "$OUT/results$SUFFIX.json" --md "$OUT/RESULTS$SUFFIX.md" --command "$COMMAND"
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
