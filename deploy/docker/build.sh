#!/usr/bin/env bash
# Builds the loom-node image without a container daemon and leaves it as an OCI archive:
#
#   deploy/docker/build.sh        # -> target/image/linkloom.oci.tar (image linkloom:<version>)
#
# 1. static loom-node and loom for x86_64-unknown-linux-musl, built here (the web UI embedded
#    as in every build: npm ci when ui/web/node_modules is missing or stale, then node/build.rs);
# 2. rootfs.sh writes the image's filesystem as target/image/context/rootfs.tar;
# 3. buildah (vfs storage and chroot isolation: no daemon, no overlay filesystem) runs
#    deploy/docker/Dockerfile to its `prebuilt` stage on that context, and exports the result.
#
# Installs musl-tools and buildah with apt when missing. Builds go to $CARGO_TARGET_DIR (default
# ~/.cache/linkloom/target-musl) with $CARGO_BUILD_JOBS jobs (default: every core, at nice 10);
# buildah's storage is ~/.cache/linkloom/containers, outside the repository.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TRIPLE=x86_64-unknown-linux-musl
OUT_DIR=target/image
ARCHIVE=$OUT_DIR/linkloom.oci.tar
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target-musl}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
JOBS=${CARGO_BUILD_JOBS:-$(nproc)}
STORAGE=${LOOM_CONTAINERS_DIR:-$HOME/.cache/linkloom/containers}
buildah() { command buildah --root "$STORAGE/storage" --runroot "$STORAGE/run" --storage-driver vfs "$@"; }
step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

missing=()
type -P musl-gcc >/dev/null || missing+=(musl-tools)
# `type -P`, not `command -v`: the buildah function above would answer for a missing binary.
type -P buildah >/dev/null || missing+=(buildah)
compgen -G "/usr/share/ca-certificates/mozilla/*.crt" >/dev/null || missing+=(ca-certificates)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx "$TRIPLE"; then
  step "rustup target add $TRIPLE"
  rustup target add "$TRIPLE"
fi

# As deploy/local/test.sh: loom-node's build.rs builds the UI with npm, so its packages come first
# (here only when missing or older than the lock file, so a tree in use is not reinstalled).
web=ui/web
if [ -f "$web/package.json" ] && [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  step "web UI: npm ci"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

step "cargo build --release --target $TRIPLE (loom-node, loom; $JOBS job(s), target dir $CARGO_TARGET_DIR)"
nice -n 10 cargo build --release --locked --target "$TRIPLE" -p linkloom-node -p linkloom-cli -j "$JOBS"
BIN_DIR=$CARGO_TARGET_DIR/$TRIPLE/release

VERSION=$(awk -F'"' '/^\[workspace.package\]/ { in_ws = 1 } in_ws && /^version/ { print $2; exit }' Cargo.toml)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$REVISION" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then REVISION="$REVISION-dirty"; fi
# File and image times from the last commit, not from the clock of the build.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
TAG=linkloom:$VERSION

step "rootfs: $OUT_DIR/context/rootfs.tar"
rm -rf "$OUT_DIR/context"
deploy/docker/rootfs.sh "$BIN_DIR" "$OUT_DIR/context/rootfs.tar"

step "buildah bud ($TAG, revision $REVISION)"
mkdir -p "$STORAGE"
buildah bud --isolation chroot --squash --timestamp "$SOURCE_DATE_EPOCH" \
  --target prebuilt \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" --build-arg CREATED="$CREATED" \
  --iidfile "$OUT_DIR/image.id" -f deploy/docker/Dockerfile -t "$TAG" "$OUT_DIR/context" 2>&1 \
  | { grep -v 'HEALTHCHECK is not supported for OCI image format' >&2 || true; }
rm -f "$ARCHIVE"
buildah push --quiet "$TAG" "oci-archive:$ARCHIVE:$TAG"
# The archive is the product: drop the image and the stage it was made from from the storage.
buildah rmi "$(cat "$OUT_DIR/image.id")" >/dev/null
buildah rmi --prune >/dev/null 2>&1 || true
rm -f "$OUT_DIR/image.id"

unpacked=$(tar -tvf "$OUT_DIR/context/rootfs.tar" | awk '{ sum += $3 } END { printf "%.1f", sum / 1048576 }')
archived=$(stat -c %s "$ARCHIVE" | awk '{ printf "%.1f", $1 / 1048576 }')
echo "image $TAG: $ARCHIVE, ${archived} MiB (gzip layer), ${unpacked} MiB unpacked; built in $((SECONDS - started)) s"
