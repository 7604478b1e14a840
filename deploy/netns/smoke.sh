#!/usr/bin/env bash
# Checks deploy/netns/cluster.sh as an operator uses it: up, status, partition the leader, a new
# leader on the majority side, heal, the old leader follows it, down. Prints SKIPPED (and exits
# 0) only where the machine cannot make namespaces (not root, no netns or nftables).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! why=$("$HERE/net.sh" check 2>&1); then
  echo "SKIPPED: nodes on separate network hosts are not possible here: $why"
  exit 0
fi
CLUSTER="$HERE/cluster.sh"
trap '"$CLUSTER" down >/dev/null 2>&1 || true' EXIT
"$CLUSTER" down >/dev/null 2>&1 || true

leaders() { "$CLUSTER" status | sed -n 's/.* up [a-z]* leader=\([0-9a-z]*\) .*/\1/p'; }
# wait_for WHAT COMMAND...: polls every 100 ms for at most 30 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 300); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  echo "netns smoke: timed out waiting for $what"; "$CLUSTER" status; exit 1
}

"$CLUSTER" up
[ "$("$CLUSTER" status | grep -c ' up ')" = 3 ] || { "$CLUSTER" status; echo "not every node is up"; exit 1; }
old=$(leaders | sort -u)
[ "$(echo "$old" | wc -l)" = 1 ] || { echo "the nodes disagree on the leader: $old"; exit 1; }

"$CLUSTER" partition "$old"
start=$(date +%s%N)
majority_has_new_leader() {
  local views
  views=$("$CLUSTER" status | grep -v "^node $old " | sed -n 's/.* leader=\([0-9]*\) .*/\1/p' | sort -u)
  [ "$(echo "$views" | wc -l)" = 1 ] && [ -n "$views" ] && [ "$views" != "$old" ]
}
wait_for "a new leader on the majority side" majority_has_new_leader
echo "new leader on the majority side $(( ($(date +%s%N) - start) / 1000000 )) ms after the partition"

"$CLUSTER" heal
all_agree() { [ "$(leaders | sort -u | wc -l)" = 1 ] && [ "$(leaders | sort -u)" != "$old" ]; }
wait_for "the old leader to follow the new one" all_agree
"$CLUSTER" status
"$CLUSTER" down
trap - EXIT
echo "netns smoke: passed"
