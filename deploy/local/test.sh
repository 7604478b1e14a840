#!/usr/bin/env bash
# Runs every check of the repository: formatting, lints, the web UI's component and end-to-end
# tests, unit and property tests, the multi-process cluster tests, the deterministic simulation,
# and a smoke test of deploy/local/cluster.sh.
# Rust builds go to $CARGO_TARGET_DIR (default ~/.cache/linkloom/target) so they stay warm.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Each fresh clone lives at a new path, so incremental caches pile up in the shared target dir
# (35 GB after a day of CI runs here) without ever being reused: build without them.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
if ! command -v curl >/dev/null 2>&1; then
  step "installing curl (used by the cluster smoke test)"
  apt-get update -qq && apt-get install -y -qq curl
fi

if ! command -v npm >/dev/null 2>&1; then
  step "installing Node.js and npm (the web UI is built and tested with them)"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
if ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium (the web UI's end-to-end tests drive it headless)"
  apt-get update -qq && apt-get install -y -qq chromium
fi

step "web UI: npm ci and component tests (Vitest; the type check and build run in cargo build)"
(cd ui/web && npm ci --no-audit --no-fund --loglevel=error && npm test)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build --release (loom-node for cluster.sh)"
cargo build --release --locked -p linkloom-node

step "web UI end-to-end (playwright-core + chromium against a 3-node cluster; screenshots in ui/web/test-results/)"
(cd ui/web && LOOM_NODE_BIN="$CARGO_TARGET_DIR/release/loom-node" LOOM_CHROMIUM="$(command -v chromium)" npm run e2e)

step "cargo test (unit, property and multi-process cluster tests)"
cargo test --locked

# The simulation is not a default member (it enables core's bug-injection feature, which must
# not reach loom-node); it runs in release, where a 35 s simulated run takes about half a second.
step "deterministic simulation (fixed seeds of every scenario, replay, injected bugs)"
cargo test --release --locked -p linkloom-simulation

step "deploy/local/cluster.sh smoke test"
LOOM_NODE_BIN="$CARGO_TARGET_DIR/release/loom-node" deploy/local/cluster-smoke.sh
