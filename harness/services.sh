#!/usr/bin/env bash
# Starts, stops or reports the object-store emulators that the tests use, all on 127.0.0.1:
#   s3    moto_server            (S3)
#   azure azurite-blob           (Azure Blob Storage)
#   gcs   gcp-storage-emulator   (Google Cloud Storage)
# Usage: BCRS_RUN_DIR=DIR harness/services.sh start|stop|status
# `start` writes DIR/env (NAME='value' lines to source with `set -a`), DIR/<name>.log and
# DIR/<name>.pid. `stop` ends exactly the processes named by the pid files (each runs in its
# own process group, which is signalled whole), never anything found by name.
set -euo pipefail

: "${BCRS_RUN_DIR:?BCRS_RUN_DIR must be set to the directory for logs, pid files and env}"
RUN=$BCRS_RUN_DIR
PREFIX=${BCRS_PREFIX:-/opt/bcrs}
PYTHON=/usr/bin/python3
SERVICES=(s3 azure gcs)
START_TIMEOUT=${BCRS_START_TIMEOUT:-60}
AZURITE_ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, documented by Microsoft).
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# alive PID: true while PID exists and is not a zombie.
alive() {
  local state
  [ -r "/proc/$1/stat" ] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# group_alive PGID: true while any non-zombie process is in that process group.
group_alive() {
  local p
  for p in $(ps -e -o pid= -o pgid= | awk -v g="$1" '$2 == g { print $1 }'); do
    alive "$p" && return 0
  done
  return 1
}

# Picks N distinct free ports on 127.0.0.1 (all sockets held open until all are chosen).
free_ports() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# launch NAME CMD...: runs CMD in a new session (its own process group) and records its PID.
# In a non-interactive script the background child is not a group leader, so setsid execs
# CMD in place rather than forking: $! is the server itself.
launch() {
  local name=$1; shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# wait_http NAME URL: waits until URL gives any HTTP answer while the process is alive.
wait_http() {
  local name=$1 url=$2 pid deadline
  pid=$(cat "$RUN/$name.pid")
  deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! alive "$pid"; then
      fail_start "$name" "exited before answering on $url"
    fi
    if curl -s -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail_start "$name" "no answer on $url after ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
}

fail_start() {
  printf '[services] ERROR: %s %s; last lines of %s:\n' "$1" "$2" "$RUN/$1.log" >&2
  tail -n 40 "$RUN/$1.log" >&2 || true
  stop_all >&2
  exit 1
}

stop_one() {
  local name=$1 pidfile=$RUN/$1.pid pid pgid group=0 i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
    rm -f "$pidfile"
    return 0
  fi
  if alive "$pid"; then
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ' || true)
    # Signal the whole group only when the server leads its own group, as launch made it.
    [ "$pgid" = "$pid" ] && group=1
    if [ "$group" = 1 ]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < 100; i++)); do
      if [ "$group" = 1 ]; then group_alive "$pid" || break; else alive "$pid" || break; fi
      sleep 0.1
    done
    if { [ "$group" = 1 ] && group_alive "$pid"; } || alive "$pid"; then
      log "$name (pid $pid) still running after 10s: SIGKILL"
      if [ "$group" = 1 ]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop_all() {
  local s
  for s in "${SERVICES[@]}"; do stop_one "$s"; done
}

start_all() {
  local s pid
  mkdir -p "$RUN"
  for s in "${SERVICES[@]}"; do
    if [ -f "$RUN/$s.pid" ] && pid=$(cat "$RUN/$s.pid") && alive "$pid"; then
      die "$s already running (pid $pid) for $RUN: run '$0 stop' first"
    fi
  done
  local bin
  for bin in "$PREFIX/emu-venv/bin/moto_server" "$PREFIX/emu-venv/bin/gcp-storage-emulator" \
    "$PREFIX/node/node_modules/.bin/azurite-blob" "$PREFIX/barman-venv/bin/barman-cloud-wal-archive"; do
    [ -x "$bin" ] || die "$bin is missing: run harness/install.sh first"
  done

  local s3_port az_port gcs_port
  read -r s3_port az_port gcs_port < <(free_ports 3)

  launch s3 "$PREFIX/emu-venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port"
  mkdir -p "$RUN/azurite"
  launch azure "$PREFIX/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" \
    --location "$RUN/azurite" --skipApiVersionCheck --loose --silent --disableTelemetry
  launch gcs "$PREFIX/emu-venv/bin/gcp-storage-emulator" start --host 127.0.0.1 --port "$gcs_port" --in-memory

  wait_http s3 "http://127.0.0.1:$s3_port/"
  wait_http azure "http://127.0.0.1:$az_port/$AZURITE_ACCOUNT?comp=list"
  wait_http gcs "http://127.0.0.1:$gcs_port/storage/v1/b?project=test"

  local az_endpoint=http://127.0.0.1:$az_port/$AZURITE_ACCOUNT
  local env_tmp=$RUN/env.tmp
  {
    printf "%s='%s'\n" \
      BCRS_S3_ENDPOINT "http://127.0.0.1:$s3_port" \
      AWS_ACCESS_KEY_ID testing \
      AWS_SECRET_ACCESS_KEY testing-secret \
      AWS_DEFAULT_REGION us-east-1 \
      BCRS_AZURE_ENDPOINT "$az_endpoint" \
      BCRS_AZURE_CONNECTION_STRING "DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$az_endpoint;" \
      BCRS_GCS_ENDPOINT "http://127.0.0.1:$gcs_port" \
      BCRS_BARMAN_BIN "$PREFIX/barman-venv/bin" \
      BCRS_MOTO_SERVER "$PREFIX/emu-venv/bin/moto_server" \
      BCRS_PG_BIN /usr/lib/postgresql/15/bin
  } >"$env_tmp"
  mv "$env_tmp" "$RUN/env"
  log "s3 (moto) on 127.0.0.1:$s3_port, pid $(cat "$RUN/s3.pid")"
  log "azure (azurite) on 127.0.0.1:$az_port, pid $(cat "$RUN/azure.pid")"
  log "gcs (gcp-storage-emulator) on 127.0.0.1:$gcs_port, pid $(cat "$RUN/gcs.pid")"
  log "environment in $RUN/env"
}

status_all() {
  local s pid rc=0
  for s in "${SERVICES[@]}"; do
    if [ ! -f "$RUN/$s.pid" ]; then
      printf '%-6s not started\n' "$s"
      rc=3
    elif pid=$(cat "$RUN/$s.pid") && alive "$pid"; then
      printf '%-6s running (pid %s)\n' "$s" "$pid"
    else
      printf '%-6s dead (pid %s)\n' "$s" "$pid"
      rc=3
    fi
  done
  return "$rc"
}

case "${1:-}" in
  start) start_all ;;
  stop) stop_all ;;
  status) status_all ;;
  *) die "usage: BCRS_RUN_DIR=DIR $0 start|stop|status" ;;
esac
