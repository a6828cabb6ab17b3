#!/usr/bin/env bash
# barman-cloud-verify benchmark (issue #18): how fast verify reads a whole pgbench backup,
# next to our barman-cloud-restore of the same backup, with the peak RSS of each, on
# file:// and on moto (S3). Prints a table and writes benches/RESULTS-verify.md.
#
#   benches/verify.sh       # as root on Debian 12 with harness/install.sh done (~10 min)
#
# Knobs (environment):
#   BENCH_SCALE=N                 pgbench scale of the database (default 70, ~1.05 GiB)
#   BENCH_COMPRESSIONS="none gzip"  backup compressions
#   BENCH_REPS=N                  rounds of verify + restore per store and compression (3)
#   BENCH_OUT=FILE                where the table goes (default benches/RESULTS-verify.md)
#   BENCH_KEEP=1                  keep the work directory
#
# Each backup is taken once per store by our barman-cloud-backup (-J 2, the default) with
# our wal-archive as archive_command into both stores. Timed: `barman-cloud-verify URL pg
# bench-COMP` (-J 4, its default: every tarball part read to its end and parsed as tar, and the
# backup's WAL decoded, and the archive's continuity) and `barman-cloud-restore URL pg
# bench-COMP DEST` (-J 4, its default; it fsyncs what it wrote), with an untimed `sync` before
# each. MB/s are over the bytes of the files in the tarballs (verify's file_bytes, what the
# restore writes). Medians of BENCH_REPS rounds. Wall time and peak RSS from
# /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/servers.sh
. benches/servers.sh
ROOT=$PWD
SCALE=${BENCH_SCALE:-70}
COMPRESSIONS=${BENCH_COMPRESSIONS:-none gzip}
REPS=${BENCH_REPS:-3}
OUT=${BENCH_OUT:-$ROOT/benches/RESULTS-verify.md}
PG_BIN=/usr/lib/postgresql/15/bin
log() { printf '[verify-bench] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL runs as postgres through runuser)" >&2; exit 1; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before: $LOAD_BEFORE"

cargo build --release --quiet --bins
COMMIT=$(git rev-parse --short HEAD)

bench_start bench-verify
BIN=$WORK/bin
mkdir -p "$BIN" "$WORK/file"
cp "${CARGO_TARGET_DIR:-target}"/release/barman-cloud-{wal-archive,backup,restore,verify} "$BIN/"
chmod -R a+rwX "$BIN" "$WORK/file"
BUCKET=bench
curl -sf -X PUT "$BCRS_S3_ENDPOINT/$BUCKET" >/dev/null
FILE_URL=file://$WORK/file
S3_URL=s3://$BUCKET/bench
S3_ARGS=(--endpoint-url "$BCRS_S3_ENDPOINT")

log "PostgreSQL 15 with pgbench -i -s $SCALE"
pgbench_cluster "$SCALE"
# Archive from here on only: the initial load's WAL is no backup's business.
ARCHIVE="AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
ARCHIVE="$BIN/barman-cloud-wal-archive --gzip $FILE_URL pg %p && $ARCHIVE $BIN/barman-cloud-wal-archive --gzip ${S3_ARGS[*]} $S3_URL pg %p"
psql -c "ALTER SYSTEM SET archive_command = '${ARCHIVE//\'/\'\'}'" >/dev/null
psql -c "SELECT pg_reload_conf()" >/dev/null
psql -c "SELECT pg_switch_wal()" >/dev/null


ROWS=()
for comp in $COMPRESSIONS; do
  flag=()
  [ "$comp" = none ] || flag=("--$comp")
  for store in file s3; do
    if [ "$store" = file ]; then url=$FILE_URL; extra=(); else url=$S3_URL; extra=("${S3_ARGS[@]}"); fi
    log "backup [$store $comp]"
    # As postgres, like the archive_command, so both can write the file:// store.
    run "backup" runuser -u postgres -- "$BIN/barman-cloud-backup" "${extra[@]}" "${flag[@]}" \
      --immediate-checkpoint -n "bench-$comp" -U postgres -h "$WORK/pg" "$url" pg >/dev/null
  done
done
psql -c "SELECT pg_switch_wal()" >/dev/null
# Every backup's end WAL must be archived before verify looks for it.
for _ in $(seq 300); do
  [ "$(find "$WORK/pg/data/pg_wal/archive_status" -name '*.ready' | wc -l)" = 0 ] && break
  sleep 1
done
log "load at the start of the timed runs: $(cut -d' ' -f1-3 /proc/loadavg)"
LOADS=()
for comp in $COMPRESSIONS; do
  for store in file s3; do
    if [ "$store" = file ]; then url=$FILE_URL; extra=(); else url=$S3_URL; extra=("${S3_ARGS[@]}"); fi
    vs=(); vr=(); rs=(); rr=()
    bytes=
    for rep in $(seq "$REPS"); do
      sync
      read -r s rss < <(run "verify" "$BIN/barman-cloud-verify" "${extra[@]}" --format json -q "$url" pg "bench-$comp")
      [ -n "$s" ] || exit 1
      read -r bytes stored < <(/usr/bin/python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["backups"][0]; print(b["file_bytes"], b["stored_bytes"])' "$WORK/out")
      vs+=("$s"); vr+=("$rss")
      dest=$WORK/restore
      rm -rf "$dest"
      sync
      read -r s rss < <(run "restore" "$BIN/barman-cloud-restore" "${extra[@]}" "$url" pg "bench-$comp" "$dest")
      [ -n "$s" ] || exit 1
      rs+=("$s"); rr+=("$rss")
      rm -rf "$dest"
      LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
      log "[$store $comp] round $rep: verify ${vs[-1]} s, restore ${rs[-1]} s"
    done
    v=$(printf '%s\n' "${vs[@]}" | median)
    r=$(printf '%s\n' "${rs[@]}" | median)
    vmax=$(printf '%s\n' "${vr[@]}" | sort -n | tail -1)
    rmax=$(printf '%s\n' "${rr[@]}" | sort -n | tail -1)
    name=$store; [ "$store" = s3 ] && name="S3 (moto)"
    ROWS+=("$(printf '| %s | %s | %.0f / %.0f | %.0f MB/s (%.2f s) | %.0f MB/s (%.2f s) | %.0f / %.0f MB |' \
      "$name" "$comp" "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$stored / 1000000" | bc -l)" \
      "$(echo "$bytes / 1000000 / $v" | bc -l)" "$v" "$(echo "$bytes / 1000000 / $r" | bc -l)" "$r" \
      "$(echo "$vmax / 1024" | bc -l)" "$(echo "$rmax / 1024" | bc -l)")")
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "# barman-cloud-verify next to barman-cloud-restore"
  echo
  echo "\`benches/verify.sh\` (BENCH_SCALE=$SCALE, BENCH_REPS=$REPS), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT,"
  echo "$(nproc) cores; load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER; 1-minute"
  echo "load after each round: ${LOADS[*]}. Medians of $REPS rounds; peak RSS is the largest."
  echo
  echo "| store | compression | MB in files / stored | verify | restore (ours) | peak RSS verify / restore |"
  echo "|---|---|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
} >"$OUT"
cat "$OUT"
