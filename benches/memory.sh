#!/usr/bin/env bash
# Memory benchmark (issue #19 item 4): peak RSS and wall time of barman-cloud-backup and
# barman-cloud-restore per compression, to file:// and to moto (S3), and a 1,000-segment
# archiving run (one process per segment, as archive_command runs it, then --max-parallel 8)
# whose per-process peak RSS must stay flat. Prints tab-separated rows and writes them to
# $BENCH_OUT.
#
#   benches/memory.sh       # as root on Debian 12 with harness/install.sh done (~15 min)
#
# Knobs (environment):
#   BENCH_BIN="NAME=DIR ..."      binaries to measure, side by side in each round (default:
#                                 ours=<cargo build --release>; e.g. "before=/tmp/a after=target/release")
#   BENCH_SCALE=N                 pgbench scale of the database (default 70, ~1.05 GiB)
#   BENCH_TABLES=N                small tables (one row, a primary key) added to it, ~4 files
#                                 each: memory against the number of files (default 0)
#   BENCH_COMPRESSIONS="..."      backup compressions (default: none gzip lz4 zstd snappy bzip2;
#                                 "" for the archiving run alone)
#   BENCH_REPS=N                  backups and restores per store and compression (default 2)
#   BENCH_SEGMENTS=N              segments in the archiving run (default 1000; 0 skips it)
#   BENCH_OUT=FILE                where the rows go (default /tmp/bcrs-memory-<time>.tsv)
#
# Backups run as postgres (-J 2, the default, --immediate-checkpoint), restores as root
# (-J default) into a fresh directory that is removed after each; an untimed `sync` runs
# before each. Everything this script starts (moto through harness/services.sh, PostgreSQL
# through pg_ctl) is stopped through its pid file on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/servers.sh
. benches/servers.sh
ROOT=$PWD
SCALE=${BENCH_SCALE:-70}
TABLES=${BENCH_TABLES:-0}
COMPRESSIONS=${BENCH_COMPRESSIONS-none gzip lz4 zstd snappy bzip2}
REPS=${BENCH_REPS:-2}
SEGMENTS=${BENCH_SEGMENTS:-1000}
OUT=${BENCH_OUT:-/tmp/bcrs-memory-$(date +%Y%m%dT%H%M%S).tsv}
PG_BIN=/usr/lib/postgresql/15/bin
log() { printf '[memory-bench] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL runs as postgres through runuser)" >&2; exit 1; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --quiet --bin barman-cloud-backup --bin barman-cloud-restore \
    --bin barman-cloud-wal-archive
  BENCH_BIN=ours=$(realpath "${CARGO_TARGET_DIR:-target}/release")
fi

bench_start bench-memory
VARIANTS=()
mkdir -p "$WORK/file"
for v in $BENCH_BIN; do
  VARIANTS+=("${v%%=*}")
  mkdir -p "$WORK/bin-${v%%=*}"
  cp "${v#*=}"/barman-cloud-{wal-archive,backup,restore} "$WORK/bin-${v%%=*}/"
done
chmod -R a+rwX "$WORK"/bin-* "$WORK/file"
curl -sf -X PUT "$BCRS_S3_ENDPOINT/bench" >/dev/null
FILE_URL=file://$WORK/file
S3_URL=s3://bench/bench
S3_ARGS=(--endpoint-url "$BCRS_S3_ENDPOINT")

log "PostgreSQL 15 with pgbench -i -s $SCALE"
pgbench_cluster "$SCALE"
if [ "$TABLES" -gt 0 ]; then
  log "$TABLES small tables"
  # One statement per line: autocommit, so no transaction holds thousands of locks.
  seq "$TABLES" | awk '{printf "CREATE TABLE t%d (id int PRIMARY KEY, v text); INSERT INTO t%d VALUES (1, '"'"'x'"'"');\n", $1, $1}' |
    psql -q >/dev/null
  psql -c checkpoint >/dev/null
fi
log "$(find "$WORK/pg/data" -type f | wc -l) files in PGDATA"
# MB/s are over the files a backup reads: PGDATA without pg_wal.
MB=$(du -sb --exclude=pg_wal "$WORK/pg/data" | awk '{print $1 / 1e6}')


printf 'binaries\ttool\tstore\tcompression\trep\tseconds\tMB/s\tpeak_rss_kb\n' | tee "$OUT"
row() { # variant tool store comp rep "seconds rss"
  local s=${6% *} rss=${6#* }
  printf '%s\t%s\t%s\t%s\t%s\t%.2f\t%.0f\t%s\n' "$1" "$2" "$3" "$4" "$5" "$s" "$(echo "$MB / $s" | bc -l)" "$rss" | tee -a "$OUT"
}
for comp in $COMPRESSIONS; do
  flag=()
  [ "$comp" = none ] || flag=("--$comp")
  for store in file s3; do
    if [ "$store" = file ]; then url=$FILE_URL; extra=(); else url=$S3_URL; extra=("${S3_ARGS[@]}"); fi
    for rep in $(seq "$REPS"); do
      for v in "${VARIANTS[@]}"; do
        BIN=$WORK/bin-$v
        name="m-$v-$comp-$rep"
        sync
        r=$(run backup runuser -u postgres -- "$BIN/barman-cloud-backup" "${extra[@]}" "${flag[@]}" \
          --immediate-checkpoint -n "$name" -U postgres -h "$WORK/pg" "$url" pg)
        row "$v" backup "$store" "$comp" "$rep" "$r"
        sync
        r=$(run restore "$BIN/barman-cloud-restore" "${extra[@]}" "$url" pg "$name" "$WORK/restored")
        row "$v" restore "$store" "$comp" "$rep" "$r"
        rm -rf "$WORK/restored"
      done
    done
    # The stored backups are not needed any more (moto keeps them in memory).
    if [ "$store" = file ]; then rm -rf "$WORK/file/pg/base"; fi
  done
done

[ "$SEGMENTS" -gt 0 ] || exit 0
# One real 16 MiB segment of the pgbench load, linked under SEGMENTS consecutive names (no
# 16 GiB on disk); archived with lz4 so that the stores hold ~1/4 of that.
SEG=$(ls "$WORK/pg/data/pg_wal" | grep -E '^[0-9A-F]{24}$' | head -1)
mkdir -p "$WORK/wal"
for i in $(seq 0 $((SEGMENTS - 1))); do
  ln "$WORK/pg/data/pg_wal/$SEG" "$WORK/wal/$(printf '0000000200000%03X000000%02X' $((i / 256)) $((i % 256)))"
done
archive_run() { # store mode: prints one "seconds rss_kb" line per process
  local store=$1 mode=$2 url extra seg
  if [ "$store" = file ]; then url=$FILE_URL/wal-$mode; extra=(); else url=$S3_URL-$mode; extra=("${S3_ARGS[@]}"); fi
  url=$url-$BIN_NAME
  # A file:// store's directory must exist (wal-archive does not create it).
  if [ "$store" = file ]; then mkdir -p "${url#file://}"; fi
  if [ "$mode" = single ]; then
    for seg in "$WORK"/wal/*; do
      run archive "$BIN/barman-cloud-wal-archive" "${extra[@]}" --lz4 "$url" pg "$seg"
    done
  else
    # As PostgreSQL with --max-parallel 8: each call archives its segment and up to 7 .ready
    # ones after it, which the next calls find already done.
    mkdir -p "$WORK/wal/archive_status" "$WORK/spool-$store-$BIN_NAME"
    for seg in "$WORK"/wal/0*; do touch "$WORK/wal/archive_status/$(basename "$seg").ready"; done
    for seg in "$WORK"/wal/0*; do
      run archive "$BIN/barman-cloud-wal-archive" "${extra[@]}" --lz4 --max-parallel 8 \
        --spool-dir "$WORK/spool-$store-$BIN_NAME" "$url" pg "$seg"
      mv "$WORK/wal/archive_status/$(basename "$seg").ready" "$WORK/wal/archive_status/$(basename "$seg").done"
    done
    rm -rf "$WORK/wal/archive_status"
  fi
}
stats() { # label: reads "seconds rss_kb" lines
  awk -v label="$1" -v bin="$BIN_NAME" '
    function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                   return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { rss[NR] = $2; s += $1 }
    END { n = NR; k = (n < 100) ? n : 100
          for (i = 1; i <= k; i++) { f[i] = rss[i]; if (rss[i] > fm) fm = rss[i] }
          for (i = 1; i <= k; i++) { l[i] = rss[n - k + i]; if (rss[n - k + i] > lm) lm = rss[n - k + i] }
          printf "%s\tarchive\t%s\t%d processes, %.1f s\tfirst %d median/max %d/%d KB\tlast %d median/max %d/%d KB\n", bin, label, n, s, k, med(f, k), fm, k, med(l, k), lm }'
}
# The archiving run uses the last binaries named in BENCH_BIN.
BIN_NAME=${VARIANTS[-1]}
BIN=$WORK/bin-$BIN_NAME
for store in file s3; do
  for mode in single parallel8; do
    log "archiving $SEGMENTS segments [$store $mode]"
    archive_run "$store" "$mode" >"$WORK/archive-$store-$mode"
    stats "$store $mode" <"$WORK/archive-$store-$mode" | tee -a "$OUT"
    if [ "$store" = file ]; then rm -rf "$WORK/file/wal-$mode-$BIN_NAME"; fi
  done
done
log "load after: $(cut -d' ' -f1-3 /proc/loadavg); rows in $OUT"
