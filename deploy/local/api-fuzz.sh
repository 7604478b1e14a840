#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis: every operation, a
# bounded number of generated requests each, first on an open node, then on a node with tokens
# (as the admin). Every answer is checked against the document: no server error, only documented
# statuses, content types and headers, and bodies that validate against their schemas (success
# and error answers alike).
#
#   deploy/local/api-fuzz.sh                 # both nodes, every check, LOOM_FUZZ_EXAMPLES (default 15) each
#   LOOM_FUZZ_CHECKS=not_a_server_error deploy/local/api-fuzz.sh   # named checks only
#   LOOM_FUZZ_NODES=secured deploy/local/api-fuzz.sh  # one node only (open, secured)
#
# `connectWorker` is left out: an accepted connection is a stream that lasts until the worker
# leaves, so each generated one would hold for the request timeout (node/tests/workers.rs covers
# it, refusals included).
#
# Every check runs, the ones on requests too: a schema-valid request must be accepted (or get a
# status that depends on state) and a schema-violating one refused. The exceptions, each with its
# reason, are in deploy/local/schemathesis.toml.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target}
BIN=${LOOM_NODE_BIN:-$CARGO_TARGET_DIR/release/loom-node}
VENV=${LOOM_FUZZ_VENV:-$HOME/.cache/linkloom/st-venv}
EXAMPLES=${LOOM_FUZZ_EXAMPLES:-15}
NODES=${LOOM_FUZZ_NODES:-open secured}
CHECKS=${LOOM_FUZZ_CHECKS:-all}
SCHEMATHESIS_VERSION=4.32.5

[ -x "$BIN" ] || { echo "no loom-node at $BIN: build it (cargo build --release -p linkloom-node)" >&2; exit 1; }

if [ ! -x "$VENV/bin/schemathesis" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$VENV"
  PIP_CACHE_DIR=$HOME/.cache/pip "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d /tmp/loom-fuzz.XXXXXX)
PID=""
stop() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
trap 'stop; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_node NAME [env arguments...]: a one-node cluster on a free port; sets URL once it is ready.
start_node() {
  local name=$1; shift
  local port; port=$(free_port)
  URL="http://127.0.0.1:$port"
  env "$@" "$BIN" --node-id 1 --listen "127.0.0.1:$port" --data-dir "$WORK/$name" >"$WORK/$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 150); do
    if curl -fsS "$URL/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the $name node did not become ready within 30 s:" >&2
  tail -20 "$WORK/$name.log" >&2
  exit 1
}

fuzz() {
  local name=$1; shift
  # `all`: every check schemathesis has, as schemathesis.toml configures them (it narrows the
  # checks on requests for node-to-node messages); otherwise the named ones.
  local checks=()
  if [ "$CHECKS" != all ]; then checks=(--checks "$CHECKS"); fi
  echo "==> schemathesis against the $name node ($EXAMPLES examples per operation; checks: $CHECKS)"
  # From the scratch directory: schemathesis keeps a cache (.schemathesis/) where it runs.
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$ROOT/deploy/local/schemathesis.toml" \
    run "$URL/api/openapi.json" --url "$URL" "${checks[@]}" \
    --max-examples "$EXAMPLES" --seed 20261130 --no-color --request-timeout 10 \
    --report junit --report-junit-path "$WORK/$name.xml" \
    --exclude-operation-id connectWorker "$@")
}

for node in $NODES; do
  case $node in
    open)
      start_node open -u LOOM_ADMIN_TOKEN
      fuzz open
      ;;
    secured)
      TOKEN="loom-fuzz-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
      start_node secured "LOOM_ADMIN_TOKEN=$TOKEN"
      fuzz secured --header "Authorization: Bearer $TOKEN"
      ;;
    *) echo "LOOM_FUZZ_NODES: unknown node \`$node\` (open, secured)" >&2; exit 2 ;;
  esac
  stop
done
echo "api fuzz: passed ($NODES)"
