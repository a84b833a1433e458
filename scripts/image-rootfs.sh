#!/usr/bin/env bash
# Lays out the files of relctl's container image under DIR, for the final
# `FROM scratch` stage of docker/relctl/Dockerfile (which copies DIR/rootfs/
# to / and DIR/home/ to /home/relctl/, owned by 65532):
#
#   scripts/image-rootfs.sh BIN DIR
#
#   DIR/rootfs/usr/local/bin/relctl                BIN, a static binary (scripts/build-static.sh)
#   DIR/rootfs/etc/ssl/certs/ca-certificates.crt   the CA bundle of this (Debian) system's ca-certificates
#   DIR/rootfs/etc/passwd, group, nsswitch.conf    user and group `relctl` (65532); hosts from files, then DNS
#   DIR/rootfs/tmp                                 mode 1777
#   DIR/home                                       empty: $HOME
#
# The Dockerfile's build stage runs it in the Rust image; scripts/build-image.sh
# runs it here. Exit 1 when BIN is not a static executable or the CA bundle is missing.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: scripts/image-rootfs.sh BIN DIR" >&2; exit 2; }
bin=$1 dir=$2
ca=${RELCTL_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

[ -x "$bin" ] || { echo "image-rootfs: $bin is not an executable file" >&2; exit 1; }
deps=$(ldd "$bin" 2>&1 || true)
if ! grep -Eq 'not a dynamic executable|statically linked' <<<"$deps"; then
  echo "image-rootfs: $bin is not static (a FROM scratch image has no shared library); ldd lists:" >&2
  echo "$deps" >&2
  exit 1
fi
[ -s "$ca" ] || { echo "image-rootfs: no CA bundle at $ca (install Debian's ca-certificates)" >&2; exit 1; }

root="$dir/rootfs"
rm -rf "$root" "$dir/home"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$dir/home"
install -m 0755 "$bin" "$root/usr/local/bin/relctl"
install -m 0644 "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nrelctl:x:65532:65532:relctl:/home/relctl:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nrelctl:x:65532:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chmod 0755 "$dir/home"
