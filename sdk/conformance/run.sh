#!/usr/bin/env bash
# Runs the whole conformance kit for one SDK (sdk/conformance/README.md):
#
#   sdk/conformance/run.sh rust|python|go|typescript|java
#
# Builds the node, the driver and the fake node, installs the SDK where it needs installing,
# runs the SDK's own kit tests (vectors and transcripts) and then every scenario against a
# three-node cluster the driver starts and always stops. The last line is
# `conformance LANG: N passed, M failed`; the exit status is 0 only if M is 0 and N is not.
set -euo pipefail

SDK=${1:-}
case "$SDK" in
  rust | python | go | typescript | java) ;;
  *) echo "usage: $0 rust|python|go|typescript|java" >&2; exit 2 ;;
esac
shift

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
BIN="$CARGO_TARGET_DIR/release"

echo "==> building loom-node, the driver and the fake node (release)"
cargo build --release --locked -p linkloom-node -p linkloom-conformance

case "$SDK" in
  rust)
    # Debug test binaries: `cargo test` (deploy/local/test.sh) has built them already.
    KIT_TESTS="cd '$ROOT' && cargo test --locked -p linkloom-conformance --test vectors --test transcripts"
    PROGRAM=("$BIN/loom-conformance-rust")
    ;;
  python)
    VENV=$("$ROOT/sdk/python/venv.sh")
    KIT_TESTS="cd '$ROOT/sdk/python' && LOOM_FAKE_NODE='$BIN/loom-fake-node' '$VENV/bin/python' -m pytest -q -p no:cacheprovider tests/test_vectors.py tests/test_transcripts.py"
    PROGRAM=("$VENV/bin/python" "$ROOT/sdk/python/conformance/program.py")
    ;;
  *)
    echo "FAIL sdk: there is no $SDK SDK in this repository yet (sdk/$SDK)"
    echo "conformance $SDK: 0 passed, 1 failed"
    exit 1
    ;;
esac

exec "$BIN/loom-conformance" --lang "$SDK" --kit-tests "$KIT_TESTS" "$@" -- "${PROGRAM[@]}"
