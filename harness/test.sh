#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this): install what the tests
# need, start the emulators on loopback, run lint and every test with services required (a
# missing service fails instead of skipping), and stop what we started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

harness/install.sh
export BCRS_RUN_DIR
BCRS_RUN_DIR=$(mktemp -d /tmp/bcrs-run-XXXXXX)
trap 'harness/services.sh stop; rm -rf "$BCRS_RUN_DIR"' EXIT
harness/services.sh start
set -a
# shellcheck disable=SC1091
. "$BCRS_RUN_DIR/env"
set +a
export BCRS_REQUIRE_SERVICES=1

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --quiet
cargo test --all-targets
# The CloudNativePG sidecar (cnpg-plugin/, issue #15), in its own invocations: with
# --workspace, cargo would unify the two packages' features and rebuild the root's
# dependencies with the sidecar's, twice per run.
cargo clippy -p cnpg-plugin --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc -p cnpg-plugin --no-deps --quiet
# The tests run the CNPG stand-in and the API stand-in as programs: `--all-targets` builds
# examples as test harnesses only, so build them as programs first.
cargo build -p cnpg-plugin --examples
cargo test -p cnpg-plugin --all-targets
# The README's Quick start, as a user runs it.
harness/demo.sh
