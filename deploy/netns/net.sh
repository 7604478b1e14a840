#!/usr/bin/env bash
# Separate network hosts on one machine: each node in its own Linux network namespace with its
# own address on a bridge, so partitions are real (nftables in the node's namespace), not
# simulated. Used by the Jepsen-style test's partition nemesis and the multi-host tests.
#
#   net.sh create          namespaces $PREFIX-1..$NODES (node N at $SUBNET.N), a bridge, and the
#                          host at $SUBNET.254 (where tests and clients run); installs iproute2 and
#                          nftables if missing
#   net.sh destroy         remove all of it (idempotent)
#   net.sh isolate N       node N neither sends to nor hears the other nodes; clients still reach it
#   net.sh cut FROM TO     what node FROM sends to node TO is lost (one direction)
#   net.sh loss N PERCENT  that share of the packets between node N and the other nodes is lost
#   net.sh heal            undo every isolate and cut
#   net.sh exec N CMD...   run CMD in node N's namespace
#   net.sh check           exit 0 if this machine can do all of the above (root, netns, nftables)
#
# Settings (environment): LOOM_NETNS_PREFIX (default loom), LOOM_NETNS_SUBNET (the first three
# octets, default 10.77.0), LOOM_NETNS_NODES (default 3). Only addresses inside the namespaces this
# script creates are used. Faults drop packets (a connection across a cut hangs, as across a real
# partition); they never touch the host's own rules.
set -euo pipefail

PREFIX=${LOOM_NETNS_PREFIX:-loom}
SUBNET=${LOOM_NETNS_SUBNET:-10.77.0}
NODES=${LOOM_NETNS_NODES:-3}
BRIDGE="$PREFIX-br"
TABLE=loom_faults

ns() { echo "$PREFIX-$1"; }
veth() { echo "$PREFIX-v$1"; }
addr() { echo "$SUBNET.$1"; }

die() {
  echo "net.sh: $*" >&2
  exit 1
}

need_tools() {
  if command -v ip >/dev/null && command -v nft >/dev/null; then
    return
  fi
  [[ $(id -u) == 0 ]] || die "iproute2 and nftables are missing, and installing them needs root"
  apt-get update -qq >/dev/null && apt-get install -y -qq iproute2 nftables >/dev/null ||
    die "could not install iproute2 and nftables"
}

create() {
  need_tools
  destroy >/dev/null 2>&1 || true
  ip link add "$BRIDGE" type bridge
  ip addr add "$(addr 254)/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for n in $(seq 1 "$NODES"); do
    ip netns add "$(ns "$n")"
    ip link add "$(veth "$n")" type veth peer name eth0 netns "$(ns "$n")"
    ip link set "$(veth "$n")" master "$BRIDGE" up
    ip -n "$(ns "$n")" addr add "$(addr "$n")/24" dev eth0
    ip -n "$(ns "$n")" link set eth0 up
    ip -n "$(ns "$n")" link set lo up
  done
}

destroy() {
  for n in $(seq 1 "$NODES"); do
    ip netns del "$(ns "$n")" 2>/dev/null || true
    ip link del "$(veth "$n")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# The fault table of node N's namespace, made on first use.
table() {
  local n=$1
  if ! ip netns exec "$(ns "$n")" nft list table inet "$TABLE" >/dev/null 2>&1; then
    ip netns exec "$(ns "$n")" nft -f - <<EOF
table inet $TABLE {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
EOF
  fi
}

node_id() {
  [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= NODES)) || die "no node $1 (nodes are 1..$NODES)"
}

isolate() {
  node_id "$1"
  table "$1"
  for other in $(seq 1 "$NODES"); do
    [[ $other == "$1" ]] && continue
    ip netns exec "$(ns "$1")" nft add rule inet "$TABLE" input ip saddr "$(addr "$other")" drop
    ip netns exec "$(ns "$1")" nft add rule inet "$TABLE" output ip daddr "$(addr "$other")" drop
  done
}

cut() {
  node_id "$1"
  node_id "$2"
  table "$1"
  ip netns exec "$(ns "$1")" nft add rule inet "$TABLE" output ip daddr "$(addr "$2")" drop
}

loss() {
  node_id "$1"
  [[ ${2:-} =~ ^[0-9]+$ ]] && (($2 >= 1 && $2 <= 100)) || die "loss takes a percentage, 1..100"
  table "$1"
  for other in $(seq 1 "$NODES"); do
    [[ $other == "$1" ]] && continue
    ip netns exec "$(ns "$1")" nft add rule inet "$TABLE" input ip saddr "$(addr "$other")" numgen random mod 100 lt "$2" drop
    ip netns exec "$(ns "$1")" nft add rule inet "$TABLE" output ip daddr "$(addr "$other")" numgen random mod 100 lt "$2" drop
  done
}

heal() {
  for n in $(seq 1 "$NODES"); do
    ip netns exec "$(ns "$n")" nft delete table inet "$TABLE" 2>/dev/null || true
  done
}

check() {
  [[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
  need_tools
  local probe="$PREFIX-check-$$"
  ip netns add "$probe" 2>/dev/null || die "cannot create a network namespace here"
  if ! ip netns exec "$probe" nft add table inet "$TABLE" 2>/dev/null; then
    ip netns del "$probe"
    die "nftables does not work inside a namespace here"
  fi
  ip netns del "$probe"
}

case ${1:-} in
  create) create ;;
  destroy) destroy ;;
  isolate) isolate "${2:-}" ;;
  cut) cut "${2:-}" "${3:-}" ;;
  loss) loss "${2:-}" "${3:-}" ;;
  heal) heal ;;
  exec)
    node_id "${2:-}"
    n=$2
    shift 2
    exec ip netns exec "$(ns "$n")" "$@"
    ;;
  check) check ;;
  *)
    echo "usage: $0 create|destroy|isolate N|cut FROM TO|loss N PERCENT|heal|exec N CMD...|check" >&2
    exit 2
    ;;
esac
