#!/usr/bin/env bash
# Builds relctl as one self-contained Linux binary for this machine's
# architecture, as the release workflow ships it (and the container image
# carries it), checks it, and packs it:
#
#   scripts/build-static.sh [--out DIR] [--tag TAG]     (default DIR: dist)
#
# --tag: the release tag being built (the release workflow's); exit 2 unless it
# is v<Cargo.toml's version>, since the Action finds a release by that version.
# The gnu target with glibc linked statically (crt-static) and the `vendored`
# feature (OpenSSL, libgit2, libssh2 and zlib compiled in), so the binary needs
# no shared library at all. The commit it embeds (`relctl --version`) is this
# checkout's HEAD, or RELCTL_BUILD_COMMIT when set (build.rs).
# Writes DIR/relctl-<arch>-unknown-linux-gnu.tar.gz (holding `relctl`), its
# DIR/<tarball>.sha256 line for SHA256SUMS, and DIR/relctl (the binary itself).
# Honours CARGO_TARGET_DIR. Exit 1 when the build fails or the binary is not
# static or does not say its version and commit.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
tag=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --tag) tag=${2:?--tag needs a tag}; shift 2 ;;
    *) echo "build-static: unknown argument $1 (usage: scripts/build-static.sh [--out DIR] [--tag TAG])" >&2; exit 2 ;;
  esac
done
if [ -n "$tag" ]; then
  version=$(awk '/^\[/ { p = ($0 == "[package]") } p && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*/, ""); print; exit }' Cargo.toml)
  if [ "$tag" != "v$version" ]; then
    echo "build-static: tag $tag does not name Cargo.toml's version $version (expected v$version): bump the version, commit, tag again" >&2
    exit 2
  fi
fi

arch=$(uname -m)
target="$arch-unknown-linux-gnu"
asset="relctl-$target.tar.gz"
# With --target, RUSTFLAGS reach only the binary, not build scripts and proc macros (which must stay dynamic).
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
started=$(date +%s)
cargo build --release --locked --features vendored --target "$target"
bin="${CARGO_TARGET_DIR:-target}/$target/release/relctl"
echo "build-static: built $bin in $(($(date +%s) - started)) s"

# A static executable: ldd finds no shared library to list.
deps=$(ldd "$bin" 2>&1 || true)
if ! grep -Eq 'not a dynamic executable|statically linked' <<<"$deps"; then
  echo "build-static: $bin is not static; ldd lists:" >&2
  echo "$deps" >&2
  exit 1
fi
version=$("$bin" --version)
if ! grep -Eq '^relctl [0-9]+\.[0-9]+\.[0-9]+[^ ]* \(commit ([0-9a-f]{40}|unknown)\)$' <<<"$version"; then
  echo "build-static: unexpected --version output: $version" >&2
  exit 1
fi

mkdir -p "$out"
cp "$bin" "$out/relctl"
# Reproducible: fixed owner, order and time (the commit's, else the epoch), no gzip timestamp.
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$mtime" -C "$out" -cf - relctl | gzip -n -9 >"$out/$asset"
(cd "$out" && sha256sum "$asset" >"$asset.sha256")
echo "build-static: $version; ldd: $(tr '\n' ' ' <<<"$deps")"
echo "build-static: $out/$asset ($(stat -c %s "$out/$asset") bytes; binary $(stat -c %s "$out/relctl") bytes)"
