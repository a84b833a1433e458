#!/usr/bin/env bash
# Builds relctl's container image from a static binary built beforehand
# (scripts/build-static.sh), on the engine DOCKER_HOST names, with the classic
# builder and no network:
#
#   scripts/build-image.sh [--binary BIN] [--tag NAME]   (defaults: dist/relctl, relctl:dev)
#
# The Dockerfile is docker/relctl/Dockerfile's final stage (from `FROM scratch`
# on, with `--from=build` removed), so the image is the one relctl releases,
# laid out by the same scripts/image-rootfs.sh; only the binary comes from
# outside instead of the build stage. The context is a temporary directory: the
# binary, Debian's CA bundle (/etc/ssl/certs/ca-certificates.crt, from the
# ca-certificates package) and the rest of the layout. Labels: the Dockerfile's
# own, plus version and revision from `relctl --version`.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=dist/relctl
tag=relctl:dev
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) bin=${2:?--binary needs a file}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    *) echo "build-image: unknown argument $1 (usage: scripts/build-image.sh [--binary BIN] [--tag NAME])" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "build-image: no binary at $bin: run scripts/build-static.sh first, or pass --binary" >&2; exit 1; }

line=$("$bin" --version)
if [[ ! $line =~ ^relctl\ ([^ ]+)\ \(commit\ ([0-9a-f]{40}|unknown)\)$ ]]; then
  echo "build-image: $bin --version says '$line'" >&2
  exit 1
fi
version=${BASH_REMATCH[1]} commit=${BASH_REMATCH[2]}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
scripts/image-rootfs.sh "$bin" "$ctx/image"
sed -n '/^FROM scratch/,$p' docker/relctl/Dockerfile | sed 's/ --from=build / /' >"$ctx/Dockerfile"
grep -q '^FROM scratch' "$ctx/Dockerfile" || { echo "build-image: docker/relctl/Dockerfile has no FROM scratch stage" >&2; exit 1; }

DOCKER_BUILDKIT=0 docker build --network none --tag "$tag" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$commit" \
  "$ctx"
echo "build-image: $tag ($line)"
