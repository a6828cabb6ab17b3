#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 machine, as root: the PostgreSQL 15
# binaries (no cluster is started), the object-store emulators (moto for S3, Azurite for
# Azure Blob, gcp-storage-emulator for GCS) and Barman's own cloud tools for interop tests.
# Everything but the Debian packages lives under /opt/bcrs. Idempotent: each step leaves a
# stamp that names its pins, so a second run with the same pins is a quick no-op.
set -euo pipefail

PREFIX=${BCRS_PREFIX:-/opt/bcrs}
PYTHON=/usr/bin/python3   # Debian's: the postgres user must be able to run the venvs
MOTO_PIN='moto[server]==5.2.5'
GCS_EMU_PIN='gcp-storage-emulator==2026.7.19'
BARMAN_PIN='barman[cloud,azure,google,snappy,zstandard,lz4]==3.19.1'
AZURITE_PIN='azurite@3.35.0'
# postgresql-15 ships contrib (it provides postgresql-contrib-15) and pgbench. libpq-dev,
# python3-dev and gcc build psycopg2, which Barman requires and PyPI has no Linux wheel of.
APT_PACKAGES=(postgresql-15 python3-venv curl openssl procps util-linux ca-certificates libpq-dev python3-dev gcc)

STAMPS=$PREFIX/.stamps
T0=$(date +%s.%N)
step_t0=$T0

log() { printf '[install] %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
step_begin() { step_t0=$(date +%s.%N); log "$1 ..."; }
step_end() { log "$1 ($(elapsed "$step_t0"))"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then die "node and npm are required (Node.js 20)"; fi

# A stamp holds the exact pins of its step; a step is done when its stamp matches.
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" >"$STAMPS/$1"; }

# --- Debian packages -------------------------------------------------------------------
pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }

install_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ] && getent passwd postgres >/dev/null; then
    log "apt: all present, skipped"
    return
  fi
  [ ${#missing[@]} -gt 0 ] || missing=(postgresql-15)   # the package creates the postgres user
  step_begin "apt: installing ${missing[*]}"
  # No service may start: invoke-rc.d asks policy-rc.d, and 101 means "not allowed".
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
  # Belt and braces: leave no cluster running from the package's postinst.
  if command -v pg_lsclusters >/dev/null; then
    local ver name port status
    while read -r ver name port status _; do
      if [ "$status" = online ]; then
        log "apt: stopping cluster $ver/$name (port $port) started by the package"
        pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop || true
      fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  step_end "apt: done"
}

install_apt
getent passwd postgres >/dev/null || die "no postgres user after installing postgresql-15"
for b in initdb pg_ctl postgres pg_basebackup pgbench; do
  [ -x "/usr/lib/postgresql/15/bin/$b" ] || die "missing /usr/lib/postgresql/15/bin/$b"
done

# --- Python venvs ----------------------------------------------------------------------
# make_venv NAME CHECK PIN...: (re)creates $PREFIX/NAME with Debian's python and the pins,
# then runs CHECK (a shell snippet) before stamping it.
make_venv() {
  local name=$1 check=$2; shift 2
  local dir=$PREFIX/$name want
  want="python=$($PYTHON -c 'import sys; print(sys.version.split()[0])') $*"
  if stamp_ok "$name" "$want" && [ -x "$dir/bin/python" ]; then
    log "$name: up to date ($*), skipped"
    return
  fi
  step_begin "$name: installing $*"
  rm -rf "$dir"
  mkdir -p "$PREFIX"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input "$@"
  (cd / && eval "$check") || die "$name: check failed: $check"
  stamp_set "$name" "$want"
  step_end "$name: done"
}

make_venv emu-venv \
  "'$PREFIX/emu-venv/bin/moto_server' --help >/dev/null && '$PREFIX/emu-venv/bin/gcp-storage-emulator' --help >/dev/null" \
  "$MOTO_PIN" "$GCS_EMU_PIN"

make_venv barman-venv \
  "'$PREFIX/barman-venv/bin/python' -c 'import boto3, azure.storage.blob, azure.identity, google.cloud.storage, snappy, zstandard, lz4.frame, psycopg2' && '$PREFIX/barman-venv/bin/barman-cloud-wal-archive' --version >/dev/null" \
  "$BARMAN_PIN"

# --- Azurite ---------------------------------------------------------------------------
install_azurite() {
  local dir=$PREFIX/node want
  want="node=$(node --version) $AZURITE_PIN"
  if stamp_ok node "$want" && [ -x "$dir/node_modules/.bin/azurite-blob" ]; then
    log "azurite: up to date ($AZURITE_PIN), skipped"
    return
  fi
  step_begin "azurite: installing $AZURITE_PIN"
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-update-notifier --loglevel=error "$AZURITE_PIN" >/dev/null
  "$dir/node_modules/.bin/azurite-blob" --help >/dev/null || die "azurite-blob does not run"
  stamp_set node "$want"
  step_end "azurite: done"
}
install_azurite

# --- Permissions -----------------------------------------------------------------------
# archive_command runs as the postgres user, which must read and run the Barman venv.
chmod -R a+rX "$PREFIX"
log "all done in $(elapsed "$T0")"
