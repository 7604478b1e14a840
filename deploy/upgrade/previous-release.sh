#!/usr/bin/env bash
# Prints the path of the previous release's loom-node (the tag in deploy/upgrade/PREVIOUS_RELEASE,
# or $LOOM_PREVIOUS_RELEASE), building it once from that tag into
# ~/.cache/linkloom/releases/TAG/loom-node: a release build of the node alone, several minutes the
# first time, nothing after. The rolling upgrade test starts a cluster on it and upgrades it to
# this checkout's build. Build output goes to stderr; stdout is the path only.
#
#   LOOM_PREVIOUS_NODE_BIN=$(deploy/upgrade/previous-release.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TAG=${LOOM_PREVIOUS_RELEASE:-$(tr -d '[:space:]' < "$ROOT/deploy/upgrade/PREVIOUS_RELEASE")}
OUT="$HOME/.cache/linkloom/releases/$TAG"
BIN="$OUT/loom-node"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

cd "$ROOT"
if ! git rev-parse -q --verify "refs/tags/$TAG^{commit}" >/dev/null; then
  echo "tag $TAG is not in this clone; fetching it from origin" >&2
  if ! git fetch -q origin "refs/tags/$TAG:refs/tags/$TAG" >&2; then
    echo "cannot find release $TAG: clone with its tags (git fetch --tags), or set LOOM_PREVIOUS_RELEASE" >&2
    exit 1
  fi
fi
SRC=$(mktemp -d /tmp/loom-release-src.XXXXXX)
trap 'rm -rf "$SRC"' EXIT
git archive "$TAG" | tar -x -C "$SRC"
echo "building loom-node $TAG (release, once; cached in $OUT)" >&2
mkdir -p "$OUT"
# Its own target dir: the tag's dependency versions must not evict this checkout's builds.
(cd "$SRC" && CARGO_TARGET_DIR="$OUT/target" CARGO_INCREMENTAL=0 cargo build --release --locked -p linkloom-node >&2)
cp "$OUT/target/release/loom-node" "$BIN.partial"
mv "$BIN.partial" "$BIN"
# Only the binary is kept: the build tree is gigabytes.
rm -rf "$OUT/target"
"$BIN" --version >&2
echo "$BIN"
