#!/usr/bin/env bash
# Prints the path of the previous release's loom-node (the release named in
# deploy/upgrade/PREVIOUS_RELEASE, or $LOOM_PREVIOUS_RELEASE), building it once from its source into
# ~/.cache/linkloom/releases/TAG/loom-node: a release build of the node alone, several minutes the
# first time, nothing after. The rolling upgrade test starts a cluster on it and upgrades it to
# this checkout's build. Build output goes to stderr; stdout is the path only.
#
#   LOOM_PREVIOUS_NODE_BIN=$(deploy/upgrade/previous-release.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# PREVIOUS_RELEASE holds the tag and the commit it names. The commit is what gets built: a clone
# made without tags (CI checks out a branch) still has it in its history, and a tag moved by
# mistake cannot silently change what "the previous release" is.
read -r PINNED_TAG PINNED_COMMIT < "$ROOT/deploy/upgrade/PREVIOUS_RELEASE"
TAG=${LOOM_PREVIOUS_RELEASE:-$PINNED_TAG}
OUT="$HOME/.cache/linkloom/releases/$TAG"
BIN="$OUT/loom-node"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

cd "$ROOT"
if [ "$TAG" = "$PINNED_TAG" ] && [ -n "$PINNED_COMMIT" ]; then
  REV=$PINNED_COMMIT
  if TAGGED=$(git rev-parse -q --verify "refs/tags/$TAG^{commit}") && [ "$TAGGED" != "$REV" ]; then
    echo "tag $TAG names $TAGGED, but deploy/upgrade/PREVIOUS_RELEASE pins $REV; fix one of them" >&2
    exit 1
  fi
else
  REV=$TAG
fi
if ! git rev-parse -q --verify "$REV^{commit}" >/dev/null; then
  echo "$REV is not in this clone; fetching it from origin" >&2
  if ! git fetch -q origin "$REV" >&2 || ! git rev-parse -q --verify "$REV^{commit}" >/dev/null; then
    echo "cannot find release $TAG ($REV): clone with full history, or set LOOM_PREVIOUS_RELEASE to a tag or commit this clone has" >&2
    exit 1
  fi
fi
SRC=$(mktemp -d /tmp/loom-release-src.XXXXXX)
trap 'rm -rf "$SRC"' EXIT
git archive "$REV" | tar -x -C "$SRC"
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
