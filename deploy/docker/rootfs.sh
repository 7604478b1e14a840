#!/usr/bin/env bash
# Writes the image's whole filesystem as one tar archive, from static loom-node and loom binaries:
#
#   /usr/local/bin/loom-node, /usr/local/bin/loom   the binaries (refused unless static), without
#                                                   debug info (symbols stay, so a backtrace still
#                                                   names functions; the unstripped build has the
#                                                   same build id, for line numbers)
#   /etc/passwd, /etc/group                         root, nobody and loom (65532), from rootfs/
#   /etc/ssl/certs/ca-certificates.crt              the Mozilla roots of Debian's ca-certificates:
#                                                   the roots `loom` trusts (loom-node's HTTPS task
#                                                   calls trust the same roots built into it, plus
#                                                   LOOM_TLS_CA)
#   /data                                           the node's data, owned by 65532, private
#   /tmp                                            writable by all, sticky
#
# Nothing else: no shell, no libc. Owners and modes are set in the archive, so no root is needed
# to write it; file times are $SOURCE_DATE_EPOCH (default 0) so equal inputs give equal archives.
# Both image builds use it: the Dockerfile's build stage and deploy/docker/build.sh.
#
#   deploy/docker/rootfs.sh BINARY_DIR OUT.tar
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN_DIR=${1:?usage: rootfs.sh BINARY_DIR OUT.tar}
OUT=${2:?usage: rootfs.sh BINARY_DIR OUT.tar}
# Not this machine's /etc/ssl/certs bundle: that also holds the CAs its admin added (a proxy's,
# a company's), which an image built here must not trust wherever it runs. CA_BUNDLE=FILE puts
# FILE's certificates in instead, for an image meant to trust a private CA.
MOZILLA_ROOTS=/usr/share/ca-certificates/mozilla
CA_BUNDLE=${CA_BUNDLE:-}
UID_GID=65532

# static BINARY: fails unless BINARY asks for no program interpreter and no shared library.
static() {
  if readelf -lW "$1" | grep -q 'Requesting program interpreter' || readelf -dW "$1" | grep -q '(NEEDED)'; then
    echo "$1 is dynamically linked; the image has no libc for it (build for a musl target)" >&2
    exit 1
  fi
}

if [ -z "$CA_BUNDLE" ] && ! compgen -G "$MOZILLA_ROOTS/*.crt" >/dev/null; then
  echo "no CA certificates in $MOZILLA_ROOTS (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi
umask 022
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
for bin in loom-node loom; do
  static "$BIN_DIR/$bin"
  mkdir -p "$STAGE/usr/local/bin"
  objcopy --strip-debug "$BIN_DIR/$bin" "$STAGE/usr/local/bin/$bin"
  chmod 0755 "$STAGE/usr/local/bin/$bin"
done
install -D -m 0644 "$HERE/rootfs/etc/passwd" "$STAGE/etc/passwd"
install -D -m 0644 "$HERE/rootfs/etc/group" "$STAGE/etc/group"
mkdir -p "$STAGE/etc/ssl/certs"
if [ -n "$CA_BUNDLE" ]; then cat "$CA_BUNDLE"; else cat "$MOZILLA_ROOTS"/*.crt; fi >"$STAGE/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$STAGE/etc/ssl/certs/ca-certificates.crt"
mkdir -m 1777 "$STAGE/tmp"
mkdir -m 0700 "$STAGE/data"

tar_opts=(--sort=name --mtime="@${SOURCE_DATE_EPOCH:-0}" --numeric-owner -C "$STAGE")
mkdir -p "$(dirname "$OUT")"
tar "${tar_opts[@]}" --owner=0 --group=0 -cf "$OUT" etc tmp usr
tar "${tar_opts[@]}" --owner="$UID_GID" --group="$UID_GID" -rf "$OUT" data
