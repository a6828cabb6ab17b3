# Object-store servers the benchmarks start and stop by PID; sourced by run.sh and peers.sh.
# Each start_* sets a *_PID variable; stop_started stops every PID recorded in STARTED_PIDS;
# bench_start makes the work directory and the exit trap.

STARTED_PIDS=()

# s3s-fs 0.14.1 (the newest that builds with rustc 1.95), installed with cargo when missing.
# Prints the path of the binary, or nothing when it could not be installed.
s3s_binary() {
  local bin
  bin=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
  if [ ! -x "$bin" ]; then
    printf '[servers] installing s3s-fs 0.14.1 (~2 min)\n' >&2
    cargo install --locked --quiet s3s-fs@0.14.1 --features binary >&2 || return 0
  fi
  [ -x "$bin" ] && echo "$bin"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until URL answers at all (any HTTP status), or fails when PID is gone.
wait_http() {
  local url=$1 pid=$2 logf=$3
  shift 3
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$@" "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$logf" >&2; return 1; }
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

# start_s3s BIN ROOT PORT LOG: s3s-fs on 127.0.0.1:PORT serving ROOT; sets S3S_PID.
start_s3s() {
  local bin=$1 root=$2 port=$3 logf=$4
  # Run from its own directory, not from the checkout (a run whose worktree was removed
  # mid-way saw s3s-fs answer InternalError to every PUT from then on).
  (cd "$root" && exec setsid "$bin" --host 127.0.0.1 --port "$port" \
    --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$root") \
    >"$logf" 2>&1 </dev/null &
  S3S_PID=$!
  STARTED_PIDS+=("$S3S_PID")
  wait_http "http://127.0.0.1:$port/" "$S3S_PID" "$logf"
}

# make_test_ca DIR: a throwaway CA (DIR/ca.crt) and a certificate for localhost signed by it
# (DIR/server.crt, DIR/server.key).
make_test_ca() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bcrs bench test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
  chmod 644 "$dir/ca.crt"
}

# start_stunnel DIR ACCEPT_PORT CONNECT_PORT: TLS on 127.0.0.1:ACCEPT_PORT in front of the
# plain HTTP server on CONNECT_PORT, with DIR's certificate; sets STUNNEL_PID.
start_stunnel() {
  local dir=$1 accept=$2 connect=$3
  cat >"$dir/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 3
output = $dir/stunnel.log
; So that stunnel does not hold small writes back itself. They did not change s3s-fs's
; late GETs (pgBackRest's restore from it took 15.5 s with them, 18.9 s without).
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[s3]
accept = 127.0.0.1:$accept
connect = 127.0.0.1:$connect
cert = $dir/server.crt
key = $dir/server.key
EOF
  setsid stunnel4 "$dir/stunnel.conf" >"$dir/stunnel.out" 2>&1 </dev/null &
  STUNNEL_PID=$!
  STARTED_PIDS+=("$STUNNEL_PID")
  wait_http "https://localhost:$accept/" "$STUNNEL_PID" "$dir/stunnel.out" --cacert "$dir/ca.crt"
}

stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    printf '[servers] stopped pid %s\n' "$pid"
  done
  STARTED_PIDS=()
}

# bench_start NAME: a work directory /tmp/bcrs-NAME-XXXXXX (in WORK), the harness's services
# started with their environment exported, and an exit trap that stops what was started
# (servers by PID, a PostgreSQL left under $WORK/pg/data, the services), removes an s3s-fs
# store on /dev/shm (S3S_ROOT) and the work directory (kept with BENCH_KEEP=1).
bench_start() {
  WORK=$(mktemp -d "/tmp/bcrs-$1-XXXXXX")
  chmod 755 "$WORK"
  export BCRS_RUN_DIR=$WORK/run
  mkdir -p "$BCRS_RUN_DIR"
  S3S_ROOT=
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  harness/services.sh start
  set -a
  # shellcheck disable=SC1091
  . "$BCRS_RUN_DIR/env"
  set +a
}

bench_cleanup() {
  local rc=$?
  stop_started
  case "$S3S_ROOT" in /dev/shm/bcrs-s3s-*) rm -rf "$S3S_ROOT" ;; esac
  # The Python side stops PostgreSQL; this covers a run killed half-way.
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  harness/services.sh stop || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then printf '[servers] kept %s\n' "$WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}

# pgbench_cluster SCALE: PostgreSQL 15 under $WORK/pg (socket there, archive_command
# /bin/true), started, with `pgbench -i -s SCALE`.
pgbench_cluster() {
  local pg_bin=/usr/lib/postgresql/15/bin
  mkdir -p "$WORK/pg"
  chown postgres: "$WORK/pg"
  pg "$pg_bin/initdb" -A trust -U postgres --no-sync -D "$WORK/pg/data" >/dev/null
  cat >>"$WORK/pg/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK/pg'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 4GB
EOF
  pg "$pg_bin/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w start >/dev/null
  pg "$pg_bin/pgbench" -h "$WORK/pg" -U postgres -i -s "$1" -q postgres >/dev/null 2>&1
}
pg() { runuser -u postgres -- "$@"; }
psql() { pg /usr/lib/postgresql/15/bin/psql -X -At -h "$WORK/pg" -U postgres -d postgres "$@"; }

# run LABEL CMD...: /usr/bin/time -v around CMD; prints "seconds rss_kb" (exit 0 required).
run() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  if ! /usr/bin/time -v -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err"; then
    printf '[servers] %s failed:\n' "$label" >&2; cat "$WORK/err" "$WORK/out" >&2; exit 1
  fi
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/time")"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
