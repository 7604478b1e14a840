#!/usr/bin/env bash
# Runs every check of the repository: formatting, lints, the web UI's component and end-to-end
# tests, unit and property tests, the multi-process cluster tests, the deterministic simulation,
# a smoke test of deploy/local/cluster.sh, a rolling upgrade from the previous release, the API fuzzed against its own OpenAPI document, the
# systemd unit, the monitoring rules, the Helm chart and the container image, the Python SDK's own checks, and the SDK conformance kit
# for every SDK that exists.
# Rust builds go to $CARGO_TARGET_DIR (default ~/.cache/linkloom/target) so they stay warm.
#
#   deploy/local/test.sh                 # everything, in order
#   deploy/local/test.sh api-fuzz e2e    # only these parts (and the release build they need)
#
# Parts: ui, fmt, clippy, e2e, test, simulation, smoke, netns, upgrade, api-fuzz, deploy, sdk-python,
# conformance-rust, conformance-python.
set -euo pipefail

PARTS=(ui fmt clippy e2e test simulation smoke netns upgrade api-fuzz deploy sdk-python conformance-rust conformance-python)
for part in "$@"; do
  case " ${PARTS[*]} " in
    *" $part "*) ;;
    *) echo "unknown part \`$part\`; the parts are: ${PARTS[*]}" >&2; exit 2 ;;
  esac
done
# wants PART: whether this run includes PART (every part when none is named).
wants() {
  [ $# -eq 1 ] || return 1
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  case " ${SELECTED[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}
SELECTED=("$@")

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Each fresh clone lives at a new path, so incremental caches pile up in the shared target dir
# (35 GB after a day of CI runs here) without ever being reused: build without them.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }

# Every change to a crate relinks its test binaries under a new hash and cargo never removes the
# old ones: 44 GB of them filled this machine's disk after a few days of runs. Before building,
# keep only the newest executable of each name (cargo rebuilds any it still needs).
prune_stale_binaries() {
  local dir
  for dir in "$CARGO_TARGET_DIR"/debug/deps "$CARGO_TARGET_DIR"/release/deps; do
    [ -d "$dir" ] || continue
    find "$dir" -maxdepth 1 -type f -perm -u+x -regextype posix-extended -regex '.*-[0-9a-f]{16}' -printf '%T@ %f\n' \
      | sort -rn \
      | awk '{ name = $2; sub(/-[0-9a-f]+$/, "", name); if (seen[name]++) print $2 }' \
      | (cd "$dir" && xargs -r rm -f --)
  done
}
prune_stale_binaries

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

# Every Rust build of loom-node builds the web UI into it (node/build.rs), so npm ci comes first.
step "web UI: npm ci, then its API types against docs/openapi.json and component tests (Vitest; the type check and build run in cargo build)"
(cd ui/web && npm ci --no-audit --no-fund --loglevel=error)
if wants ui; then (cd ui/web && npm run check:api && npm test); fi

if wants fmt; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
fi

if wants clippy; then
  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

if wants e2e || wants smoke || wants netns || wants api-fuzz || wants deploy || wants sdk-python; then
  step "cargo build --release (loom-node for the end-to-end tests, cluster.sh and the API fuzz; the SDK kit's fake node)"
  cargo build --release --locked -p linkloom-node -p linkloom-conformance
fi
NODE_BIN="$CARGO_TARGET_DIR/release/loom-node"

if wants e2e; then
  step "web UI end-to-end (playwright-core + chromium against a 3-node cluster; screenshots in ui/web/test-results/)"
  (cd ui/web && LOOM_NODE_BIN="$NODE_BIN" LOOM_CHROMIUM="$(command -v chromium)" npm run e2e)
fi

if wants test; then
  step "cargo test (unit, property and multi-process cluster tests)"
  cargo test --locked
fi

# The simulation is not a default member (it enables core's bug-injection feature, which must
# not reach loom-node); it runs in release, where a 35 s simulated run takes about half a second.
if wants simulation; then
  step "deterministic simulation (fixed seeds of every scenario, replay, injected bugs)"
  cargo test --release --locked -p linkloom-simulation
fi

if wants smoke; then
  step "deploy/local/cluster.sh smoke test"
  LOOM_NODE_BIN="$NODE_BIN" deploy/local/cluster-smoke.sh
fi

if wants netns; then
  step "deploy/netns/cluster.sh: nodes on separate network hosts, a partitioned leader replaced (skipped only without root or namespaces)"
  LOOM_NODE_BIN="$NODE_BIN" deploy/netns/smoke.sh
fi

if wants upgrade; then
  step "upgrade: a rolling upgrade from the previous release ($(cut -d' ' -f1 deploy/upgrade/PREVIOUS_RELEASE)) to this build under load, on the multi-host bed (the previous release is built once and cached)"
  previous=$(deploy/upgrade/previous-release.sh)
  LOOM_PREVIOUS_NODE_BIN="$previous" cargo test -p linkloom-node --test netns -- --ignored --exact \
    a_rolling_upgrade_from_the_previous_release_under_load --nocapture
fi

if wants api-fuzz; then
  step "the API against its OpenAPI document (schemathesis; an open node and a node with tokens)"
  LOOM_NODE_BIN="$NODE_BIN" deploy/local/api-fuzz.sh
fi

if wants deploy; then
  step "deploy: the systemd unit (systemd-analyze verify and security, a node started as it starts one), the alert rules and dashboard (promtool, metric names), the Helm chart (helm lint, helm template validated against the Kubernetes schemas offline), and the container image (built without a daemon, run with runc)"
  LOOM_NODE_BIN="$NODE_BIN" deploy/systemd/check.sh
  LOOM_NODE_BIN="$NODE_BIN" deploy/monitoring/check.sh
  deploy/helm/check.sh
  # The image's static (musl) build keeps a target dir of its own, warm across runs.
  CARGO_TARGET_DIR="$HOME/.cache/linkloom/target-musl" deploy/docker/check.sh
fi

if wants sdk-python; then
  step "Python SDK: ruff, mypy --strict and pytest in a virtualenv (sdk/python/test.sh)"
  LOOM_FAKE_NODE="$CARGO_TARGET_DIR/release/loom-fake-node" sdk/python/test.sh
fi

# The kit's scenarios start their own 3-node clusters with the release loom-node.
for sdk in rust python; do
  if wants "conformance-$sdk"; then
    step "SDK conformance kit: $sdk (vectors, transcripts, scenarios against a real cluster)"
    sdk/conformance/run.sh "$sdk"
  fi
done
