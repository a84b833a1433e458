#!/usr/bin/env bash
# The test suite.
#   scripts/test.sh          everything, on the real services: installs what is
#                            missing, starts the Docker engine and registries
#                            (unless already running), runs cargo test, and
#                            stops what it started. Extra arguments go to cargo test.
#   scripts/test.sh --fast   the fast tier: unit tests, the in-memory fakes and
#                            the HTTP fixtures, no services needed.
# The full run first builds the static release binary (scripts/build-static.sh;
# about 5 minutes on 2 cores the first time, seconds once the target directory
# has it), so that the e2e tests that use it (ship::) find it built instead of
# compiling while the other e2e tests run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test: cargo is needed (https://rustup.rs)" >&2; exit 1; }
if [ "${1:-}" = "--fast" ]; then
  shift
  exec cargo test --locked --lib "$@"
fi
started=0
if ! scripts/services.sh status; then
  scripts/services.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then scripts/services.sh stop; fi; }
trap cleanup EXIT
eval "$(scripts/services.sh env)"
scripts/build-static.sh --out "${CARGO_TARGET_DIR:-target}/static-dist"
status=0
cargo test --locked --all-targets "$@" || status=$?
if [ "$status" != 0 ]; then scripts/services.sh diagnose; fi
exit "$status"
