#!/usr/bin/env bash
# Checks deploy/systemd: `systemd-analyze verify` prints nothing for the unit, its exposure score
# (`systemd-analyze security --offline`) is at most $MAX_EXPOSURE, and a node started the way the
# unit starts it (its environment file and Environment= lines, secrets as credential files, its
# umask) becomes ready with authentication on. PID 1 need not be systemd: units are only analysed.
#
#   LOOM_NODE_BIN=target/release/loom-node deploy/systemd/check.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE_BIN=${LOOM_NODE_BIN:?set LOOM_NODE_BIN to a built loom-node}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing systemd (for systemd-analyze)"
  apt-get update -qq && apt-get install -y -qq systemd >/dev/null
fi
WORK=$(mktemp -d /tmp/loom-systemd-check.XXXXXX)
NODE_PID=
cleanup() {
  if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# verify needs the ExecStart binary to exist: point it at the one under test.
unit="$WORK/loom-node.service"
sed "s|^ExecStart=/usr/local/bin/loom-node|ExecStart=$NODE_BIN|" "$HERE/loom-node.service" > "$unit"
out=$(systemd-analyze verify "$unit" 2>&1) || true
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"; echo "$out"; exit 1
fi
echo "systemd-analyze verify: nothing to say"
score=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no exposure score from systemd-analyze security"; exit 1; }
echo "systemd-analyze security: exposure $score (at most $MAX_EXPOSURE allowed; docs/deployment.md states it)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || { echo "exposure $score is above $MAX_EXPOSURE"; exit 1; }

# The node as the unit runs it: the example environment file with this machine's addresses, the
# unit's Environment= lines with %d as the credentials directory, and its umask.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
creds="$WORK/credentials"; mkdir -m 0700 "$creds"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$creds/admin-token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$creds/cluster-secret"
chmod 0400 "$creds"/*
envfile="$WORK/loom-node.env"
sed -e "s|^LOOM_LISTEN=.*|LOOM_LISTEN=127.0.0.1:$port|" \
    -e "s|^LOOM_ADVERTISE=.*|LOOM_ADVERTISE=127.0.0.1:$port|" \
    -e "s|^LOOM_PEERS=.*|LOOM_PEERS=1=127.0.0.1:$port|" "$HERE/loom-node.env" > "$envfile"
mkdir -m 0700 "$WORK/data"
(
  set -a
  # shellcheck disable=SC1090
  . "$envfile"
  set +a
  while IFS= read -r line; do
    value=${line#Environment=}
    value=${value//%d/$creds}
    export "${value?}"
  done < <(grep '^Environment=' "$HERE/loom-node.service")
  export LOOM_DATA_DIR="$WORK/data"
  umask 0077
  exec "$NODE_BIN"
) > "$WORK/node.log" 2>&1 &
NODE_PID=$!
token=$(cat "$creds/admin-token")
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$NODE_PID" 2>/dev/null || { echo "the node exited:"; tail -20 "$WORK/node.log"; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "the node never became ready:"; tail -20 "$WORK/node.log"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/workflows")
[ "$status" = 401 ] || { echo "without a token the API answered $status, not 401"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/workflows")
[ "$status" = 200 ] || { echo "with the credential's token the API answered $status, not 200"; exit 1; }
echo "a node started as the unit starts it is ready, with the credential's admin token required"
echo "systemd check: passed"
