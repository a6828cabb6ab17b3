#!/usr/bin/env bash
# Catalog benchmark (issue #4): barman-cloud-backup-list and a retention
# barman-cloud-backup-delete, ours next to Barman 3.19.1's, on a catalog of BACKUPS backups and
# WALS WAL objects in the S3 emulator (moto). Prints wall time and the requests each tool sent.
#
# Usage: benches/catalog.sh            (BACKUPS=50 WALS=100000 POLICY='REDUNDANCY 10')
# The deletions: REDUNDANCY BACKUPS-1 (what a nightly cron run does), then POLICY.
# Needs harness/install.sh's moto (/opt/bcrs/emu-venv) and Barman (/opt/bcrs/barman-venv).
# A benchmark, not a test: it asserts only that both deletions leave the same objects.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKUPS=${BACKUPS:-50}
WALS=${WALS:-100000}
POLICY=${POLICY:-REDUNDANCY 10}
DAILY_POLICY="REDUNDANCY $((BACKUPS - 1))"
PREFIX=${BCRS_PREFIX:-/opt/bcrs}
EMU_PY=$PREFIX/emu-venv/bin/python
BARMAN=$PREFIX/barman-venv/bin
OURS=target/release

cargo build --release --quiet --bins
WORK=$(mktemp -d /tmp/bcrs-bench-XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$WORK/requests.log
echo "filling moto with 3 buckets of $BACKUPS backups and $WALS WAL objects..."
"$EMU_PY" benches/catalog_moto.py "$PORT" "$LOG" "$WORK/ready" "$BACKUPS" "$WALS" \
  bench-list bench-barman bench-ours >"$WORK/moto.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
  [ -e "$WORK/ready" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/moto.out"; exit 1; }
  sleep 0.5
done
[ -e "$WORK/ready" ] || { echo "moto did not start" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1
ENDPOINT=(--endpoint-url "http://127.0.0.1:$PORT")
ROWS=()

# measure LABEL TOOL PROGRAM ARGS...: runs the program, records wall time and requests.
measure() {
  local label=$1 tool=$2 before after start end
  shift 2
  before=$(wc -l <"$LOG")
  start=$(date +%s.%N)
  if ! "$@" >"$WORK/out" 2>"$WORK/err"; then
    echo "$label ($tool) failed:" >&2
    cat "$WORK/err" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  after=$(wc -l <"$LOG")
  local counts
  counts=$(sed -n "$((before + 1)),${after}p" "$LOG" | awk '
    # A GET on the bucket itself is a listing (ListObjectsV2, or v1 as boto3 resources send).
    $1 == "GET" && $2 ~ /^\/[^\/?]+\/?\?/ { list++; next }
    $1 == "GET" { get++; next }
    /^POST .*delete/ { bulk++; next }
    /^DELETE / { del++; next }
    { other++ }
    END { printf "%d %d %d %d %d %d", list+get+bulk+del+other, list, get, bulk, del, other }')
  ROWS+=("$(printf '%s|%s|%.2f|%s' "$label" "$tool" "$(echo "$end - $start" | bc)" "$counts")")
}

URL=s3://bench-list/bench
measure "backup-list --format json" barman "$BARMAN/barman-cloud-backup-list" "${ENDPOINT[@]}" --format json "$URL" pg
measure "backup-list --format json" ours "$OURS/barman-cloud-backup-list" "${ENDPOINT[@]}" --format json "$URL" pg
measure "backup-list (console)" barman "$BARMAN/barman-cloud-backup-list" "${ENDPOINT[@]}" "$URL" pg
measure "backup-list (console)" ours "$OURS/barman-cloud-backup-list" "${ENDPOINT[@]}" "$URL" pg
# The nightly case first (the oldest backup goes), then a large clean-up on what is left.
for policy in "$DAILY_POLICY" "$POLICY"; do
  measure "backup-delete -r '$policy'" barman "$BARMAN/barman-cloud-backup-delete" "${ENDPOINT[@]}" -r "$policy" s3://bench-barman/bench pg
  measure "backup-delete -r '$policy'" ours "$OURS/barman-cloud-backup-delete" "${ENDPOINT[@]}" -r "$policy" s3://bench-ours/bench pg
done

# Both deletions must leave the same objects.
"$BARMAN/python" - "$PORT" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[1])
def keys(bucket):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out
theirs, ours = keys("bench-barman"), keys("bench-ours")
if theirs != ours:
    only_theirs = sorted(set(theirs) - set(ours))
    only_ours = sorted(set(ours) - set(theirs))
    sys.exit("the deletions left different objects: only after Barman's %d %s; only after ours %d %s"
             % (len(only_theirs), only_theirs[:10], len(only_ours), only_ours[:10]))
print("both deletions left the same %d objects (of %d)" % (len(ours), len(keys("bench-list"))))
PY
# That check's own requests are not counted: it ran after every measurement.

echo
echo "$BACKUPS backups, $WALS WAL objects, moto on 127.0.0.1, $(nproc) cores"
printf '%-40s %-7s %9s %9s %6s %6s %9s %7s %6s\n' command tool "wall (s)" requests LIST GET "bulk DEL" DELETE other
for row in "${ROWS[@]}"; do
  IFS='|' read -r label tool secs counts <<<"$row"
  read -r total list get bulk del other <<<"$counts"
  printf '%-40s %-7s %9s %9s %6s %6s %9s %7s %6s\n' "$label" "$tool" "$secs" "$total" "$list" "$get" "$bulk" "$del" "$other"
done
