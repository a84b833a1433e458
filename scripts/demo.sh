#!/usr/bin/env bash
# The main job on local defaults: start the local Docker engine and registry,
# make a throwaway copy of examples/app with a bare git remote, tag it v1.0.0,
# release it with relctl, then show the pushed images and the VERSION commit.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh start
eval "$(scripts/services.sh env)"
command -v cargo >/dev/null || { echo "demo: cargo is needed (https://rustup.rs)" >&2; exit 1; }
cargo build --quiet --bin relctl
relctl=$PWD/target/debug/relctl

work=$(mktemp -d /tmp/relctl-demo.XXXXXX)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
example_repo "$work" "demo-$(date +%s)"
git tag v1.0.0
git push -q origin v1.0.0

echo "== relctl plan v1.0.0"
"$relctl" plan v1.0.0
echo "== relctl release v1.0.0"
"$relctl" release v1.0.0
echo "== in the registry ($RELCTL_TEST_REGISTRY)"
ns=$(sed -n 's/^namespace: //p' release.yaml)
for img in server frontend agent worker nginx; do
  printf '  %s/example-%s: ' "$ns" "$img"
  curl -s "http://$RELCTL_TEST_REGISTRY/v2/$ns/example-$img/tags/list"
done
echo "== main on the remote"
git --git-dir="$work/remote.git" log --format='  %h %s' -3 main
printf '  VERSION = %s\n' "$(git --git-dir="$work/remote.git" show main:VERSION)"
echo "== the same release again is a no-op"
start=$(date +%s%N)
"$relctl" release v1.0.0 | tail -n 1
echo "  took $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "demo repository: $work/app (stop the services with scripts/services.sh stop)"
