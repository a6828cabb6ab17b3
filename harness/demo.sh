#!/usr/bin/env bash
# The Quick start demo: a throwaway PostgreSQL 15 archives its WAL to a file:// store with our
# barman-cloud-wal-archive; barman-cloud-backup takes a hot backup while pgbench writes; then
# barman-cloud-restore rebuilds a new server from it with recovery settings for a point in
# time between two marker rows, and barman-cloud-wal-restore replays the archive up to exactly
# there. Everything lives under one temporary directory and the servers are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# Any failing step says which, instead of the demo just stopping.
trap 'echo "demo: FAILED at line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR

PG_BIN=${BCRS_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PG_BIN/initdb" ] || ! command -v pgbench >/dev/null 2>&1 && [ ! -x "$PG_BIN/pgbench" ]; then
  echo "installing PostgreSQL 15"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-contrib >/dev/null
fi

# Cargo's own progress (each crate, then the elapsed time): a first build takes minutes.
echo "building barman-cloud-rs (release; a first build takes several minutes)"
cargo build --release --locked
release="${CARGO_TARGET_DIR:-target}/release"

work=$(mktemp -d /tmp/bcrs-demo-XXXXXX)
mkdir -p "$work/bin" "$work/primary" "$work/replica" "$work/store"
for program in barman-cloud-wal-archive barman-cloud-wal-restore barman-cloud-backup barman-cloud-restore; do
  cp "$release/$program" "$work/bin/" || { echo "demo: cannot copy $release/$program" >&2; exit 1; }
done
chmod -R a+rwX "$work"

# PostgreSQL refuses to run as root: use the postgres user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_at() { as_pg "$PG_BIN/psql" -X -At -h "$1" -U postgres -d postgres -c "$2"; }

stop_all() {
  for d in "$work/primary" "$work/replica"; do
    [ -f "$d/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null 2>&1 || true
  done
  # Each run holds a cluster, its restored copy and the store (about 600 MB).
  if [ "${BCRS_DEMO_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap stop_all EXIT

store="file://$work/store"
echo "== primary: archive_command = barman-cloud-wal-archive --gzip $store demo %p"
as_pg "$PG_BIN/initdb" -A trust -U postgres -D "$work/primary/data" >/dev/null
cat >> "$work/primary/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work/primary'
wal_level = replica
archive_mode = on
archive_command = '$work/bin/barman-cloud-wal-archive --gzip $store demo %p'
CONF
as_pg "$PG_BIN/pg_ctl" -D "$work/primary/data" -l "$work/primary/log" -w start >/dev/null ||
  { echo "demo: the primary did not start:" >&2; tail -20 "$work/primary/log" >&2; exit 1; }
as_pg "$PG_BIN/pgbench" -h "$work/primary" -U postgres -i -s 5 -q postgres 2>/dev/null

echo "== barman-cloud-backup --gzip while pgbench writes"
as_pg "$PG_BIN/pgbench" -h "$work/primary" -U postgres -T 8 -c 2 postgres >/dev/null 2>&1 &
bench=$!
sleep 1
as_pg "$work/bin/barman-cloud-backup" --gzip --immediate-checkpoint -h "$work/primary" -U postgres "$store" demo
wait "$bench"
backup_id=$(ls "$work/store/demo/base")
echo "   backup $backup_id: $(ls "$work/store/demo/base/$backup_id" | tr '\n' ' ')"

# A point in time between two marker rows: the restore must stop exactly there.
psql_at "$work/primary" "CREATE TABLE marker (note text); INSERT INTO marker VALUES ('before the target')" >/dev/null
target=$(psql_at "$work/primary" "SELECT clock_timestamp()")
sleep 1.1
psql_at "$work/primary" "INSERT INTO marker VALUES ('after the target')" >/dev/null
last=$(psql_at "$work/primary" "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 600); do
  done_wal=$(psql_at "$work/primary" "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
  [[ "$done_wal" > "$last" || "$done_wal" == "$last" ]] && break
  sleep 0.1
done
archiver=$(psql_at "$work/primary" "SELECT archived_count || ' archived, ' || failed_count || ' failed' FROM pg_stat_archiver")
echo "   primary archiver: $archiver; store: $(find "$work/store" -type f | wc -l) objects, $(du -sh "$work/store" | cut -f1)"
as_pg "$PG_BIN/pg_ctl" -D "$work/primary/data" -m fast -w stop >/dev/null

echo "== barman-cloud-restore latest, recovery to $target (restore_command = barman-cloud-wal-restore)"
as_pg "$work/bin/barman-cloud-restore" --write-recovery-conf --recovery-target-time "$target" \
  --recovery-target-action promote --disable-archiving "$store" demo latest "$work/replica/data"
cat >> "$work/replica/data/postgresql.auto.conf" <<CONF
unix_socket_directories = '$work/replica'
CONF
as_pg "$PG_BIN/pg_ctl" -D "$work/replica/data" -l "$work/replica/log" -w -t 300 start >/dev/null ||
  { echo "demo: the restored server did not start:" >&2; tail -20 "$work/replica/log" >&2; exit 1; }
until [ "$(psql_at "$work/replica" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
markers=$(psql_at "$work/replica" "SELECT string_agg(note, ', ') FROM marker")
restored=$(grep -c "restored log file" "$work/replica/log" || true)
accounts=$(psql_at "$work/replica" "SELECT count(*) FROM pgbench_accounts")
echo "   restored: $accounts accounts; markers: $markers; $restored WAL files replayed from the archive"
if [ "$markers" = "before the target" ] && [ "$accounts" = 500000 ]; then
  echo "OK: backup, then point-in-time recovery stopped exactly at the target"
else
  echo "MISMATCH: expected only the marker written before the target" >&2
  exit 1
fi
