#!/usr/bin/env bash
# "Close to the wire" (issue #19 item 3): one real 16 MiB WAL segment archived and restored
# by our tools next to pgBackRest 2.45 to a local directory, and uploaded over plain HTTP and
# HTTPS by our tools next to a raw signed PUT (curl) of the same bytes to the same S3 server;
# `tls`: the fixed cost of one `.history` archive over HTTPS by where the CA roots come from
# (issue #19 item 2), next to plain HTTP.
#
# Usage, as root:  benches/wire.sh [file|http|tls|all]  (default: all)
# Knobs: WIRE_BIN (our release binaries; default target/release, built if missing),
#        WIRE_BASE (another build's binaries, measured in the same runs as "ours base"),
#        WIRE_REPS (runs per row, default 21), WIRE_DIR (work directory, on the disk to
#        measure; default /var/tmp/bcrs-wire, removed at the end unless WIRE_KEEP=1),
#        WIRE_PORT (base TCP port, default 19600).
# Everything started here (PostgreSQL, s3s-fs, stunnel4) is stopped by its PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-all}
REPS=${WIRE_REPS:-21}
W=${WIRE_DIR:-/var/tmp/bcrs-wire}
PORT=${WIRE_PORT:-19600}
BIN=${WIRE_BIN:-$HERE/target/release}
BASE=${WIRE_BASE:-}
PGBIN=/usr/lib/postgresql/15/bin
# shellcheck source=benches/servers.sh
. "$HERE/benches/servers.sh"

log() { printf '[wire] %s\n' "$*" >&2; }
as_pg() { runuser -u postgres -- "$@"; }

cleanup() {
  stop_started
  if [ -f "$W/pg/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null || true
  fi
  [ "${WIRE_KEEP:-0}" = 1 ] || rm -rf "$W" ${S3ROOT_TMP:+"$S3ROOT_TMP"}
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL and pgBackRest run as postgres)" >&2; exit 1; }
if [ ! -x "$BIN/barman-cloud-wal-archive" ]; then
  (cd "$HERE" && cargo build --release --bin barman-cloud-wal-archive --bin barman-cloud-wal-restore)
fi
rm -rf "$W"; mkdir -p "$W"; chown postgres: "$W"

# --- one real segment: PostgreSQL 15 with pgbench's TPC-B-like load -------------------------
log "PostgreSQL 15 and pgbench for one real WAL segment"
as_pg "$PGBIN/initdb" -A trust -U postgres --no-sync -D "$W/pg/data" >/dev/null
cat >>"$W/pg/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$W/pg'
port = $PORT
archive_mode = off
fsync = off
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -w start >/dev/null
PSQL=(as_pg "$PGBIN/psql" -h "$W/pg" -p "$PORT" -U postgres -Atq)
as_pg "$PGBIN/pgbench" -h "$W/pg" -p "$PORT" -U postgres -i -s 2 -q postgres >/dev/null 2>&1
as_pg "$PGBIN/pgbench" -h "$W/pg" -p "$PORT" -U postgres -c 2 -t 15000 postgres >/dev/null 2>&1
CUR=$("${PSQL[@]}" -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
"${PSQL[@]}" -c "SELECT pg_switch_wal()" >/dev/null
# The segment before the current one is complete and full of pgbench's WAL.
SEG=$(ls "$W/pg/data/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | awk -v c="$CUR" '$0 < c' | tail -1)
mkdir -p "$W/wal"; cp "$W/pg/data/pg_wal/$SEG" "$W/wal/$SEG"; chown -R postgres: "$W/wal"
log "segment $SEG ($(stat -c %s "$W/wal/$SEG") bytes)"

# timings NAME -- command...: REPS runs interleaved by the caller through bench.py below.
# run_rows ROWS_JSON, as $RUN_AS (postgres for the file rows: pgBackRest insists).
RUN_AS=as_pg
run_rows() { $RUN_AS env WIRE_REPS="$REPS" python3 - "$@" <<'PY'
import json, os, statistics, subprocess, sys, time
reps = int(os.environ["WIRE_REPS"])
rows = json.loads(sys.argv[1])          # [{name, cmd, before}] (before: shell run untimed)
times = {r["name"]: [] for r in rows}
for _ in range(reps):
    for r in rows:                      # interleaved, so drift hits every row alike
        if r.get("before"):
            subprocess.run(r["before"], shell=True, check=True)
        t = time.monotonic()
        subprocess.run(r["cmd"], shell=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[r["name"]].append((time.monotonic() - t) * 1000)
for r in rows:
    v = sorted(times[r["name"]])
    p90 = v[min(len(v) - 1, round(0.9 * (len(v) - 1)))]
    print(f"| {r['name']} | {statistics.median(v):.1f} | {p90:.1f} | {v[0]:.1f}-{v[-1]:.1f} |")
PY
}

if [ "$MODE" = file ] || [ "$MODE" = all ]; then
  log "pgBackRest posix repo and our file:// store, same disk ($W)"
  cat >"$W/pgbackrest.conf" <<EOF
[global]
repo1-path=$W/pgbr
log-path=$W/pgbr-log
lock-path=$W/pgbr-lock
spool-path=$W/pgbr-spool
log-level-console=warn
log-level-file=off
start-fast=y
archive-async=n

[wire]
pg1-path=$W/pg/data
pg1-socket-path=$W/pg
pg1-port=$PORT
EOF
  chown postgres: "$W/pgbackrest.conf"
  PGBR="pgbackrest --config=$W/pgbackrest.conf --stanza=wire"
  as_pg $PGBR stanza-create >/dev/null
  as_pg mkdir -p "$W/ours"
  ARCH=$("${PSQL[@]}" -c "SELECT 1" >/dev/null; as_pg $PGBR info --output=json | python3 -c 'import json,sys; a=json.load(sys.stdin)[0]["archive"][0]["id"]; print(a)')
  PGBR_WAL="$W/pgbr/archive/wire/$ARCH/${SEG:0:16}"
  OURS_WAL="$W/ours/srv/wals/${SEG:0:16}"
  rows=$(python3 - "$BIN" "$PGBR" "$W" "$SEG" "$PGBR_WAL" "$OURS_WAL" "$BASE" <<'PY'
import json, sys
bin_, pgbr, w, seg, pgbr_wal, ours_wal, base = sys.argv[1:]
rows = []
for c, flag, pgc in (("none", "", "none"), ("zstd", "--zstd", "zst")):
    for who, b in (("ours", bin_), ("ours base", base)):
        if b:
            rows.append({"name": f"archive {c}, {who} file://",
                         "before": f"rm -f {ours_wal}/{seg}*",
                         "cmd": f"{b}/barman-cloud-wal-archive {flag} file://{w}/ours srv {w}/wal/{seg}"})
    rows.append({"name": f"archive {c}, pgBackRest posix",
                 "before": f"rm -f {pgbr_wal}/{seg}*",
                 "cmd": f"{pgbr} --compress-type={pgc} archive-push {w}/wal/{seg}"})
print(json.dumps(rows))
PY
)
  echo "| row | median ms | p90 ms | min-max ms |"; echo "|---|---:|---:|---:|"
  run_rows "$rows"
  # wal-restore of an uncompressed copy stored by each tool.
  rm -rf "$OURS_WAL" "$PGBR_WAL"
  as_pg "$BIN/barman-cloud-wal-archive" "file://$W/ours" srv "$W/wal/$SEG"
  as_pg $PGBR --compress-type=none archive-push "$W/wal/$SEG"
  as_pg mkdir -p "$W/restored"
  rows=$(python3 - "$BIN" "$PGBR" "$W" "$SEG" <<'PY'
import json, sys
bin_, pgbr, w, seg = sys.argv[1:]
dest = f"{w}/restored/RECOVERYXLOG"
print(json.dumps([
    {"name": "wal-restore none, ours file://", "before": f"rm -f {dest}",
     "cmd": f"{bin_}/barman-cloud-wal-restore file://{w}/ours srv {seg} {dest}"},
    {"name": "wal-restore none, pgBackRest archive-get", "before": f"rm -f {dest}",
     "cmd": f"{pgbr} archive-get {seg} {dest}"},
]))
PY
)
  run_rows "$rows"
fi

# start_s3_rig: s3s-fs over plain HTTP on $HPORT and stunnel4 in front of it on $TPORT, with
# a throwaway CA ($W/tls/ca.crt; hostname localhost checked by every client).
start_s3_rig() {
  S3S=$(s3s_binary)
  [ -n "$S3S" ] || { echo "s3s-fs 0.14.1 did not install" >&2; exit 1; }
  # Store on tmpfs when it has room, as benches/run.sh does: the disk is not what is measured.
  S3ROOT=$W/s3s
  if [ -d /dev/shm ]; then S3ROOT=$(mktemp -d /dev/shm/bcrs-wire-s3s.XXXXXX); S3ROOT_TMP=$S3ROOT; fi
  mkdir -p "$S3ROOT/bench"
  AK=wireaccesskey; SK=wiresecretkey123
  HPORT=$((PORT + 1)); TPORT=$((PORT + 2))
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK start_s3s "$S3S" "$S3ROOT" "$HPORT" "$W/s3s.log"
  make_test_ca "$W/tls"
  start_stunnel "$W/tls" "$TPORT" "$HPORT"
}
[ "$MODE" = file ] || start_s3_rig

if [ "$MODE" = http ] || [ "$MODE" = all ]; then
  cp "$W/wal/$SEG" "$W/seg"; sha256sum "$W/seg" | cut -d' ' -f1 >"$W/seg.sha256"
  rows=$(python3 - "$BIN" "$BASE" "$W" "$SEG" "$S3ROOT" "$AK" "$SK" "$HPORT" "$TPORT" <<'PY'
import json, sys
bin_, base, w, seg, root, ak, sk, hport, tport = sys.argv[1:]
env = (f"AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} AWS_DEFAULT_REGION=us-east-1 "
       f"AWS_CA_BUNDLE={w}/tls/ca.crt")
rows = []
for scheme, port in (("http", hport), ("https", tport)):
    url = f"{scheme}://localhost:{port}"
    for who, b in (("ours", bin_), ("ours base", base)):
        if b:
            rows.append({"name": f"PUT 16 MiB none {scheme}, {who} wal-archive",
                         "before": f"rm -rf {root}/bench/{who.replace(' ', '-')}",
                         "cmd": f"env {env} {b}/barman-cloud-wal-archive --endpoint-url {url} "
                                f"s3://bench/{who.replace(' ', '-')} srv {w}/wal/{seg}"})
    rows.append({"name": f"PUT 16 MiB none {scheme}, curl UNSIGNED-PAYLOAD",
                 "before": f"rm -f {root}/bench/curl-{seg}",
                 "cmd": f"curl -sSf --cacert {w}/tls/ca.crt -o /dev/null -T {w}/seg "
                        f"-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "
                        f"--aws-sigv4 aws:amz:us-east-1:s3 --user {ak}:{sk} "
                        f"{url}/bench/curl-{seg}"})
    if scheme == "http":
        # The payload signed as we sign it, its SHA-256 computed before the clock starts:
        # what is left is the server checking that hash as it receives the body.
        rows.append({"name": f"PUT 16 MiB none {scheme}, curl signed payload (hash not timed)",
                     "before": f"rm -f {root}/bench/curls-{seg}",
                     "cmd": f"curl -sSf -o /dev/null -T {w}/seg "
                            f"-H 'x-amz-content-sha256: {open(w + '/seg.sha256').read().strip()}' "
                            f"--aws-sigv4 aws:amz:us-east-1:s3 --user {ak}:{sk} "
                            f"{url}/bench/curls-{seg}"})
print(json.dumps(rows))
PY
)
  echo "| row | median ms | p90 ms | min-max ms |"; echo "|---|---:|---:|---:|"
  RUN_AS= run_rows "$rows"
fi

if [ "$MODE" = tls ] || [ "$MODE" = all ]; then
  printf '1\t0/3000000\tno recovery target specified\n' >"$W/00000002.history"
  mkdir -p "$W/cadir"; cp "$W/tls/ca.crt" "$W/cadir/"
  rows=$(python3 - "$BIN" "$BASE" "$W" "$S3ROOT" "$AK" "$SK" "$HPORT" "$TPORT" <<'PY'
import json, sys
bin_, base, w, root, ak, sk, hport, tport = sys.argv[1:]
# Neither SSL_CERT_FILE nor SSL_CERT_DIR reaches archive_command from a PostgreSQL started
# by systemd: that is the first row; the others set them.
env = (f"env -u SSL_CERT_FILE -u SSL_CERT_DIR -u REQUESTS_CA_BUNDLE AWS_ACCESS_KEY_ID={ak} "
       f"AWS_SECRET_ACCESS_KEY={sk} AWS_DEFAULT_REGION=us-east-1")
system = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
roots = (
    ("HTTPS, no SSL_CERT_* (as under systemd)", f"AWS_CA_BUNDLE={w}/tls/ca.crt", "https", tport),
    ("HTTPS, SSL_CERT_FILE and SSL_CERT_DIR set",
     f"AWS_CA_BUNDLE={w}/tls/ca.crt {system} SSL_CERT_DIR=/etc/ssl/certs", "https", tport),
    ("HTTPS, the CA only in SSL_CERT_DIR", f"{system} SSL_CERT_DIR={w}/cadir", "https", tport),
    ("plain HTTP", "", "http", hport),
)
rows = []
for label, extra, scheme, port in roots:
    for who, b in (("ours", bin_), ("ours base", base)):
        if not b:
            continue
        prefix = f"{who.replace(' ', '-')}-{len(rows)}"
        rows.append({"name": f".history {label}, {who}",
                     "before": f"rm -rf {root}/bench/{prefix}",
                     "cmd": f"{env} {extra} {b}/barman-cloud-wal-archive "
                            f"--endpoint-url {scheme}://localhost:{port} "
                            f"s3://bench/{prefix} srv {w}/00000002.history"})
print(json.dumps(rows))
PY
)
  echo "| row | median ms | p90 ms | min-max ms |"; echo "|---|---:|---:|---:|"
  RUN_AS= run_rows "$rows"
fi
