#!/usr/bin/env bash
# Our CloudNativePG sidecar (cnpg-plugin/, issue #15) on this machine: the latency of a WAL
# Archive call as CloudNativePG makes it (a fresh process, the plugin handshake, one Archive)
# through `manager instance` to our barman-cloud-wal-archive and the S3 emulator, next to
# barman-cloud-wal-archive alone (Barman's: the floor of the Go + Python sidecar, which runs
# it once per segment; ours), and the sidecar's memory idle and over 1,000 segments archived
# from a real PostgreSQL 15. Writes benches/SIDECAR.md and benches/results-sidecar.json.
#
#   benches/sidecar.sh        # ~3 min on 2 cores
#
# As root on Debian 12 (harness/install.sh installs PostgreSQL 15, Barman 3.19.1 and moto).
# Knobs: SIDECAR_REPS (latency calls per case, default 41), SIDECAR_SEGMENTS (default 1000),
# BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/servers.sh
. benches/servers.sh
log() { printf '[sidecar] %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "run as root (PostgreSQL runs as postgres through runuser)" >&2; exit 1; }

harness/install.sh
if [ ! -x /usr/bin/time ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
log "cargo build --release (the tools, manager and the two stand-ins)"
cargo build --release --quiet --bins
cargo build --release --quiet -p cnpg-plugin --bin manager --example cnpg_standin --example api_standin

bench_start sidecar

# Where the postgres user (archive_command) can run them.
mkdir -p "$WORK/bin"
cp target/release/barman-cloud-* target/release/manager \
  target/release/examples/cnpg_standin target/release/examples/api_standin "$WORK/bin/"
rm -f "$WORK/bin/"*.d
chmod -R a+rX "$WORK/bin"
/opt/bcrs/barman-venv/bin/python benches/sidecar.py --work "$WORK" --endpoint "$BCRS_S3_ENDPOINT"
