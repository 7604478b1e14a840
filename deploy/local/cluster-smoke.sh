#!/usr/bin/env bash
# Exercises deploy/local/cluster.sh the way an operator would: up with tokens on
# (LOOM_ADMIN_TOKEN), a write refused without a token and accepted through a follower with one,
# SIGKILL of a node, `up` again to restart it, the write visible on the restarted node, down.
# Uses ports 8081-8083 on 127.0.0.1 and a temporary directory; always stops what it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d -t loom-smoke-XXXXXX)
CLUSTER="$ROOT/deploy/local/cluster.sh"
cleanup() { (cd "$WORK" && "$CLUSTER" down >/dev/null 2>&1) || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

for port in 8081 8082 8083; do
  if curl -s --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    echo "cluster-smoke: port $port is already serving; stop that cluster first" >&2
    exit 1
  fi
done

fail() { echo "cluster-smoke: FAILED: $*" >&2; tail -n 20 .loom-cluster/node*.log >&2 || true; exit 1; }

export LOOM_ADMIN_TOKEN=s3cret
LOOM_SNAPSHOT_LOGS=500 "$CLUSTER" up || fail "up"
grep -q LOOM_SNAPSHOT_LOGS=500 "/proc/$(cat .loom-cluster/node1.pid)/environ" || fail "LOOM_* did not reach the nodes"
AUTH=(-H "Authorization: Bearer $LOOM_ADMIN_TOKEN")

spec=$'id: smoke\ntasks:\n  - {id: t, type: worker, queue: q}\n'
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/yaml' \
  --data-binary "$spec" http://127.0.0.1:8082/api/v1/workflows)
[[ $code == 401 ]] || fail "a write without a token answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X POST -H 'content-type: application/yaml' \
  --data-binary "$spec" http://127.0.0.1:8082/api/v1/workflows)
[[ $code == 201 ]] || fail "write through node 2 answered $code"

victim=$(cat .loom-cluster/node3.pid)
kill -KILL "$victim"
deadline=$((SECONDS + 10))
while kill -0 "$victim" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "node 3 survived SIGKILL"
  sleep 0.05
done
out=$("$CLUSTER" up) || fail "second up"
grep -q "node 3 started" <<<"$out" || fail "up did not restart the killed node: $out"
grep -q "node 1 already running" <<<"$out" || fail "up restarted a running node: $out"
out=$("$CLUSTER" status)
[[ $(grep -c "http://127.0.0.1" <<<"$out") == 3 ]] || fail "status: $out"
grep -q leader <<<"$out" || fail "status shows no leader (the token did not reach status): $out"

# `up` right after a SIGKILL, without waiting for the process to go: it must wait for the port
# and bring the node back (or fail loudly), never report success with the node down.
victim=$(cat .loom-cluster/node2.pid)
kill -KILL "$victim"
out=$("$CLUSTER" up) || fail "up right after a SIGKILL: $out"
grep -q "node 2 started" <<<"$out" || fail "up right after a SIGKILL did not restart node 2: $out"
new=$(cat .loom-cluster/node2.pid)
[[ $new != "$victim" ]] && kill -0 "$new" 2>/dev/null || fail "node 2 is not running after up: $out"

deadline=$((SECONDS + 30))
until curl -sf "${AUTH[@]}" "http://127.0.0.1:8083/api/v1/workflows/smoke?consistency=stale" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || fail "the restarted node never showed the write"
  sleep 0.2
done
out=$("$CLUSTER" down)
[[ $(grep -c stopped <<<"$out") == 3 ]] || fail "down: $out"
echo "cluster-smoke: 1 passed, 0 failed"
