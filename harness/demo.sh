#!/usr/bin/env bash
# The Quick start demo: a throwaway PostgreSQL 15 archives a pgbench workload to a file://
# store with our barman-cloud-wal-archive, then a second server, started from a base backup
# taken without WAL, replays all of it with our barman-cloud-wal-restore. Everything lives
# under one temporary directory and both servers are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${BCRS_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PG_BIN/initdb" ] || ! command -v pgbench >/dev/null 2>&1 && [ ! -x "$PG_BIN/pgbench" ]; then
  echo "installing PostgreSQL 15"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-contrib >/dev/null
fi

echo "building barman-cloud-rs (release)"
cargo build --release --quiet

work=$(mktemp -d /tmp/bcrs-demo-XXXXXX)
mkdir -p "$work/bin" "$work/primary" "$work/replica" "$work/store"
cp target/release/barman-cloud-* "$work/bin/" 2>/dev/null || true
chmod -R a+rwX "$work"

# PostgreSQL refuses to run as root: use the postgres user when we are root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_at() { as_pg "$PG_BIN/psql" -X -At -h "$1" -U postgres -d postgres -c "$2"; }

stop_all() {
  for d in "$work/primary" "$work/replica"; do
    [ -f "$d/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null 2>&1 || true
  done
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
as_pg "$PG_BIN/pg_ctl" -D "$work/primary/data" -l "$work/primary/log" -w start >/dev/null
as_pg "$PG_BIN/pg_basebackup" -h "$work/primary" -U postgres -X none -c fast -D "$work/replica/data" 2>/dev/null
as_pg "$PG_BIN/pgbench" -h "$work/primary" -U postgres -i -s 5 -q postgres 2>/dev/null
as_pg "$PG_BIN/pgbench" -h "$work/primary" -U postgres -T 5 -c 2 postgres >/dev/null 2>&1
last=$(psql_at "$work/primary" "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 600); do
  done_wal=$(psql_at "$work/primary" "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
  [[ "$done_wal" > "$last" || "$done_wal" == "$last" ]] && break
  sleep 0.1
done
primary_state=$(psql_at "$work/primary" "SELECT count(*) || ' accounts, balance ' || sum(abalance) FROM pgbench_accounts")
archiver=$(psql_at "$work/primary" "SELECT archived_count || ' archived, ' || failed_count || ' failed' FROM pg_stat_archiver")
echo "   primary: $primary_state; archiver: $archiver"
echo "   store:   $(find "$work/store" -type f | wc -l) objects, $(du -sh "$work/store" | cut -f1)"
as_pg "$PG_BIN/pg_ctl" -D "$work/primary/data" -m fast -w stop >/dev/null

echo "== replica: restore_command = barman-cloud-wal-restore $store demo %f %p"
cat >> "$work/replica/data/postgresql.auto.conf" <<CONF
unix_socket_directories = '$work/replica'
archive_mode = off
restore_command = '$work/bin/barman-cloud-wal-restore $store demo %f %p'
CONF
as_pg touch "$work/replica/data/recovery.signal"
as_pg "$PG_BIN/pg_ctl" -D "$work/replica/data" -l "$work/replica/log" -w -t 300 start >/dev/null
until [ "$(psql_at "$work/replica" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
replica_state=$(psql_at "$work/replica" "SELECT count(*) || ' accounts, balance ' || sum(abalance) FROM pgbench_accounts")
restored=$(grep -c "restored log file" "$work/replica/log" || true)
echo "   replica: $replica_state; $restored WAL files restored from the archive"
if [ "$primary_state" = "$replica_state" ]; then
  echo "OK: the replica replayed the whole archive (work dir: $work)"
else
  echo "MISMATCH: primary '$primary_state' vs replica '$replica_state'" >&2
  exit 1
fi
