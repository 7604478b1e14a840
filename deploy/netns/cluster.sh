#!/usr/bin/env bash
# Three loom-node processes on separate network hosts: each in its own network namespace
# (loom-1..loom-3) at http://10.77.0.N:8080 on a bridge, the host (where clients run) at
# 10.77.0.254. Partitions are real: nftables in the nodes' namespaces (net.sh). Needs root.
#
#   deploy/netns/cluster.sh up            start the cluster (namespaces, nodes), wait until ready
#   deploy/netns/cluster.sh status        one line per node: up or down, its leader, term, applied
#   deploy/netns/cluster.sh partition N   cut node N off from the others (clients still reach it)
#   deploy/netns/cluster.sh cut FROM TO   lose what node FROM sends to node TO
#   deploy/netns/cluster.sh loss N PCT    lose PCT% of the packets between node N and the others
#   deploy/netns/cluster.sh heal          undo every partition, cut and loss
#   deploy/netns/cluster.sh down          stop the nodes, remove the namespaces and the data
#
# Env: LOOM_NODE_BIN (default: the release build under $CARGO_TARGET_DIR or
# ~/.cache/linkloom/target), LOOM_NETNS_DIR (data and logs, default /tmp/loom-netns),
# LOOM_ADMIN_TOKEN (passed to the nodes if set; else they run open, on these private addresses
# only), LOOM_NETNS_PREFIX / LOOM_NETNS_SUBNET (see net.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NET="$HERE/net.sh"
export LOOM_NETNS_PREFIX=${LOOM_NETNS_PREFIX:-loom}
export LOOM_NETNS_SUBNET=${LOOM_NETNS_SUBNET:-10.77.0}
export LOOM_NETNS_NODES=3
DIR=${LOOM_NETNS_DIR:-/tmp/loom-netns}
PORT=8080

url() { echo "http://$LOOM_NETNS_SUBNET.$1:$PORT"; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

node_bin() {
  local bin=${LOOM_NODE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/linkloom/target}/release/loom-node}
  [ -x "$bin" ] || die "no loom-node at $bin: build it (cargo build --release -p linkloom-node) or set LOOM_NODE_BIN"
  echo "$bin"
}

# Answers the leader node N sees, or nothing if it does not answer.
leader_of() {
  curl -fsS -m 2 "$(url "$1")/readyz" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader_id") or "")' 2>/dev/null || true
}

up() {
  local bin peers n
  bin=$(node_bin)
  [ ! -e "$DIR/node1.pid" ] || die "a cluster is up already (run down first)"
  "$NET" create
  mkdir -p "$DIR"
  peers=$(for n in 1 2 3; do printf '%s=%s.%s:%s,' "$n" "$LOOM_NETNS_SUBNET" "$n" "$PORT"; done)
  for n in 1 2 3; do
    mkdir -p "$DIR/node$n"
    # The namespaces' network is this script's own: an open node may listen on it.
    LOOM_INSECURE_OPEN=true LOOM_LOG=${LOOM_LOG:-info,openraft=warn} setsid \
      "$NET" exec "$n" "$bin" --node-id "$n" --listen "$LOOM_NETNS_SUBNET.$n:$PORT" \
      --data-dir "$DIR/node$n" --peers "${peers%,}" </dev/null >"$DIR/node$n.log" 2>&1 &
    echo $! >"$DIR/node$n.pid"
  done
  for _ in $(seq 1 300); do
    local leaders
    leaders=$(for n in 1 2 3; do leader_of "$n"; done | sort -u)
    if [ "$(echo "$leaders" | wc -l)" = 1 ] && [ -n "$leaders" ]; then
      echo "cluster up: $(url 1), $(url 2), $(url 3); leader $leaders"
      return
    fi
    sleep 0.2
  done
  status
  die "the nodes did not agree on a leader within 60 s (logs in $DIR)"
}

status() {
  local n body
  for n in 1 2 3; do
    if body=$(curl -fsS -m 2 "$(url "$n")/api/v1/cluster?consistency=stale" 2>/dev/null); then
      echo "$body" | python3 -c "import json,sys
c = json.load(sys.stdin)
print('node $n $(url "$n") up %s leader=%s term=%s applied=%s' % (
    c.get('state', '?').lower(), c.get('leader_id') or 'none', c.get('term', '?'), c.get('last_applied')))"
    else
      echo "node $n $(url "$n") down"
    fi
  done
}

down() {
  local n pid
  for n in 1 2 3; do
    [ -f "$DIR/node$n.pid" ] || continue
    pid=$(cat "$DIR/node$n.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 100); do
    local alive=0
    for n in 1 2 3; do
      [ -f "$DIR/node$n.pid" ] && kill -0 "$(cat "$DIR/node$n.pid")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for n in 1 2 3; do
    [ -f "$DIR/node$n.pid" ] && kill -KILL -- "-$(cat "$DIR/node$n.pid")" 2>/dev/null || true
  done
  "$NET" destroy
  rm -rf "$DIR"
  echo "cluster down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  partition) "$NET" isolate "${2:?partition N}" ;;
  cut) "$NET" cut "${2:?cut FROM TO}" "${3:?cut FROM TO}" ;;
  loss) "$NET" loss "${2:?loss N PERCENT}" "${3:?loss N PERCENT}" ;;
  heal) "$NET" heal ;;
  *)
    echo "usage: $0 up|down|status|partition N|cut FROM TO|loss N PERCENT|heal" >&2
    exit 2
    ;;
esac
