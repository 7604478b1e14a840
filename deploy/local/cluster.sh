#!/usr/bin/env bash
# Starts, stops and shows a three-node Link Loom cluster on 127.0.0.1.
#
#   deploy/local/cluster.sh up      start whichever of the three nodes are not running
#   deploy/local/cluster.sh down    stop all three (SIGTERM, then SIGKILL after 10 s)
#   deploy/local/cluster.sh status  show each node's pid, role, term and applied index
#
# Node N listens on 127.0.0.1:808N; data and logs live under ./.loom-cluster/ (or
# $LOOM_CLUSTER_DIR). Any LOOM_* variable set for `up` reaches the nodes. The release binary is
# built first if it is missing ($LOOM_NODE_BIN overrides its path).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${LOOM_CLUSTER_DIR:-$PWD/.loom-cluster}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${LOOM_NODE_BIN:-$TARGET/release/loom-node}
IDS=(1 2 3)
PEERS="1=127.0.0.1:8081,2=127.0.0.1:8082,3=127.0.0.1:8083"
READY_TIMEOUT_S=${LOOM_READY_TIMEOUT_S:-60}
PORT_WAIT_S=${LOOM_PORT_WAIT_S:-10}

port() { echo $((8080 + $1)); }
pidfile() { echo "$DIR/node$1.pid"; }

# The pid of node N if it is running (and really is a loom-node), else nothing.
running_pid() {
  local file pid
  file=$(pidfile "$1")
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q loom-node "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

field() { # field NAME JSON -> value of a top-level scalar field
  sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2" | tr -d '"'
}

build_if_missing() {
  if [[ ! -x $BIN ]]; then
    echo "building $BIN ..."
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p linkloom-node)
  fi
}

# Waits (bounded) until nothing listens on node N's port: a node SIGKILLed a moment ago may
# still hold it while it exits, and a new node started then would die of "Address already in use".
wait_port_free() {
  local id=$1 port deadline
  port=$(port "$id")
  deadline=$((SECONDS + PORT_WAIT_S))
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "node $id: port $port is still in use ${PORT_WAIT_S}s later (another process holds it); not starting node $id" >&2
      return 1
    fi
    sleep 0.05
  done
}

up() {
  build_if_missing
  mkdir -p "$DIR"
  for id in "${IDS[@]}"; do
    if [[ -n $(running_pid "$id") ]]; then
      echo "node $id already running (pid $(running_pid "$id"))"
      continue
    fi
    wait_port_free "$id" || return 1
    nohup "$BIN" --node-id "$id" --listen "127.0.0.1:$(port "$id")" --data-dir "$DIR/node$id" \
      --peers "$PEERS" >>"$DIR/node$id.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$id")"
    echo "node $id started (pid $!)"
  done
  wait_ready
  status
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S)) ready
  while ((SECONDS < deadline)); do
    ready=0
    for id in "${IDS[@]}"; do
      # A node that exited (say, its port was taken) must not pass for whoever answers there.
      if ! kill -0 "$(cat "$(pidfile "$id")")" 2>/dev/null; then
        echo "node $id exited instead of coming up; last lines of $DIR/node$id.log:" >&2
        tail -n 5 "$DIR/node$id.log" >&2
        return 1
      fi
      if curl -sf --max-time 1 "http://127.0.0.1:$(port "$id")/readyz" >/dev/null 2>&1; then
        ready=$((ready + 1))
      fi
    done
    if ((ready == ${#IDS[@]})); then
      return 0
    fi
    sleep 0.2
  done
  echo "cluster not ready after ${READY_TIMEOUT_S}s; see $DIR/node*.log" >&2
  return 1
}

down() {
  local id pid deadline
  for id in "${IDS[@]}"; do
    pid=$(running_pid "$id")
    if [[ -z $pid ]]; then
      rm -f "$(pidfile "$id")"
      continue
    fi
    kill -TERM "$pid"
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "node $id did not stop within 10s; killing" >&2
      kill -KILL "$pid" || true
    fi
    rm -f "$(pidfile "$id")"
    echo "node $id stopped"
  done
}

status() {
  local id pid info
  printf '%-5s %-8s %-24s %-10s %-7s %-5s %s\n' NODE PID URL ROLE LEADER TERM APPLIED
  for id in "${IDS[@]}"; do
    pid=$(running_pid "$id")
    if [[ -z $pid ]]; then
      printf '%-5s %-8s %-24s %s\n' "$id" - "http://127.0.0.1:$(port "$id")" down
      continue
    fi
    info=$(curl -sf --max-time 2 ${LOOM_ADMIN_TOKEN:+-H "Authorization: Bearer $LOOM_ADMIN_TOKEN"} \
      "http://127.0.0.1:$(port "$id")/api/v1/cluster" || true)
    printf '%-5s %-8s %-24s %-10s %-7s %-5s %s\n' "$id" "$pid" "http://127.0.0.1:$(port "$id")" \
      "$(field state "$info")" "$(field leader_id "$info")" "$(field term "$info")" "$(field last_applied "$info")"
  done
  echo "data and logs: $DIR"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
