#!/usr/bin/env bash
# Checks deploy/monitoring: the alert rules pass `promtool check rules` and their unit tests
# (`promtool test rules alerts.test.yaml`); every query of the Grafana dashboard is valid PromQL;
# and every metric the rules and the dashboard use is served by a real node's /metrics, so a
# renamed metric cannot leave an alert that never fires.
#
#   LOOM_NODE_BIN=target/release/loom-node deploy/monitoring/check.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE_BIN=${LOOM_NODE_BIN:?set LOOM_NODE_BIN to a built loom-node}
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing Debian's prometheus package (for promtool)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
WORK=$(mktemp -d /tmp/loom-monitoring-check.XXXXXX)
NODE_PID=
cleanup() {
  if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$HERE"
promtool check rules alerts.yaml
promtool test rules alerts.test.yaml

# The dashboard's queries as recording rules, so promtool parses each (Grafana's range variables
# replaced by a fixed range).
python3 - "$WORK/dashboard-rules.yaml" <<'PY'
import json, sys
dash = json.load(open("grafana/linkloom.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "the dashboard has no queries"
with open(sys.argv[1], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        out.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
print(f"dashboard: {len(exprs)} queries")
PY
promtool check rules "$WORK/dashboard-rules.yaml"

# A real node's metric names.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$NODE_BIN" --node-id 1 --listen "127.0.0.1:$port" --data-dir "$WORK/data" --peers "1=127.0.0.1:$port" \
  > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$NODE_PID" 2>/dev/null || { echo "the node exited:"; tail -20 "$WORK/node.log"; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null
curl -fsS "http://127.0.0.1:$port/metrics" > "$WORK/metrics.txt"
python3 - "$WORK/metrics.txt" <<'PY'
import json, re, sys
served = {line.split("{")[0].split(" ")[0] for line in open(sys.argv[1]) if line and not line.startswith("#")}
used = set()
for path in ["alerts.yaml"]:
    used |= set(re.findall(r"\b((?:loom|process)_[a-z_]+)", open(path).read()))
dash = json.load(open("grafana/linkloom.json"))
for p in dash["panels"]:
    for t in p.get("targets", []):
        used |= set(re.findall(r"\b((?:loom|process)_[a-z_]+)", t["expr"]))
missing = sorted(m for m in used if m not in served)
if missing:
    sys.exit(f"used by the rules or the dashboard but not served by loom-node: {', '.join(missing)}")
print(f"every one of the {len(used)} metrics the rules and the dashboard use is served")
PY
echo "monitoring check: passed"
