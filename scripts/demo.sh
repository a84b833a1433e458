#!/usr/bin/env bash
# The main job on local defaults: build relctl (with cargo's progress), start
# the local Docker engine and registry, make a throwaway copy of examples/app
# with a bare git remote, tag it v1.0.0, release it with relctl, then show the
# pushed images and the VERSION commit, and how to go on by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v cargo >/dev/null || { echo "demo: cargo is needed (https://rustup.rs)" >&2; exit 1; }
echo "== building relctl (the first build takes a few minutes)"
cargo build --bin relctl
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
relctl=$target/debug/relctl

echo "== starting the local Docker engine and registry"
scripts/services.sh start
eval "$(scripts/services.sh env)"

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
echo "== done"
echo "relctl:          $relctl"
echo "demo repository: $work/app (its remote: $work/remote.git)"
echo "to go on by hand, point your shell at the local engine and registry, then use relctl there:"
echo "  cd $root && eval \"\$(scripts/services.sh env)\"   # sets DOCKER_HOST and RELCTL_TEST_REGISTRY"
echo "  cd $work/app && $relctl plan"
echo "stop the services with scripts/services.sh stop"
