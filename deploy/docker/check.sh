#!/usr/bin/env bash
# Checks the container image without a container daemon:
#
# - compose.yaml is a sound 3-node cluster (python3 + PyYAML: there is no `docker compose` here);
# - the image (build.sh's OCI archive) has the expected configuration and nothing but the expected
#   files: static binaries, passwd/group, CA bundle, /data owned by 65532, /tmp; no shell;
# - run by runc as the image says (its user, environment and entrypoint), with a token file and
#   /data bind-mounted, on the host's network and a read-only root, the node answers /healthz and
#   /readyz, serves an authenticated request and refuses an unauthenticated one, runs as uid
#   65532, and the image's own `loom` (its health check command included) works against it;
# - on SIGTERM it stops cleanly.
#
#   deploy/docker/check.sh                                        # builds the image (build.sh)
#   LOOM_IMAGE=target/image/linkloom.oci.tar deploy/docker/check.sh
#
# Needs root (runc, and unpacking the image with its owners); installs umoci, skopeo, runc and
# curl with apt when missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
UID_GID=65532
START_WAIT_S=30
STOP_WAIT_S=20

step() { printf '\n==> %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "deploy/docker/check.sh needs root (runc, and unpacking the image with its owners)" >&2; exit 1; }
missing=()
for tool in umoci skopeo runc curl; do type -P "$tool" >/dev/null || missing+=("$tool"); done
PYTHON=python3
"$PYTHON" -c 'import yaml' 2>/dev/null || { PYTHON=/usr/bin/python3; missing+=(python3-yaml); }
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "compose.yaml: three nodes, one peers line, secrets only as files"
"$PYTHON" - "$HERE/compose.yaml" <<'EOF'
import sys, yaml

doc = yaml.safe_load(open(sys.argv[1]))
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

services = doc.get("services") or {}
need(set(services) == {"loom-1", "loom-2", "loom-3"}, f"services are {sorted(services)}, not loom-1..3")
SECRET_VARS = {"LOOM_ADMIN_TOKEN", "LOOM_CLUSTER_SECRET", "LOOM_SIGNING_SECRET", "LOOM_SIGNING_KEYS", "LOOM_TOKEN", "LOOM_OTLP_HEADERS"}
declared_secrets = doc.get("secrets") or {}
for name, secret in declared_secrets.items():
    need(isinstance(secret, dict) and set(secret) == {"file"}, f"secret {name} must come from a file, nothing else")
declared_volumes = set(doc.get("volumes") or {})
ids, peers_lines, members, data_volumes = {}, set(), {}, set()
for name, svc in services.items():
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    env = {k: (None if v is None else str(v)) for k, v in env.items()}
    for var in sorted(SECRET_VARS & set(env)):
        problems.append(f"{name}: {var} puts a secret in the environment (use {var}_FILE and a secret)")
    mounted = {}
    for s in svc.get("secrets") or []:
        source = s if isinstance(s, str) else s["source"]
        target = s if isinstance(s, str) else s.get("target", source)
        need(source in declared_secrets, f"{name}: secret {source} is not declared")
        mounted[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    for var in ("LOOM_ADMIN_TOKEN_FILE", "LOOM_CLUSTER_SECRET_FILE"):
        need(env.get(var) in mounted, f"{name}: {var}={env.get(var)} is not a mounted secret")
    try:
        node_id = int(env.get("LOOM_NODE_ID", ""))
    except ValueError:
        problems.append(f"{name}: LOOM_NODE_ID={env.get('LOOM_NODE_ID')} is not a number")
        continue
    need(node_id not in ids.values(), f"{name}: node id {node_id} is not unique")
    ids[name] = node_id
    listen_port = env.get("LOOM_LISTEN", "0.0.0.0:8080").rsplit(":", 1)[1]
    need(env.get("LOOM_ADVERTISE") == f"{name}:{listen_port}",
         f"{name}: LOOM_ADVERTISE={env.get('LOOM_ADVERTISE')} is not {name}:{listen_port}")
    members[node_id] = env.get("LOOM_ADVERTISE")
    peers_lines.add(env.get("LOOM_PEERS"))
    data = [v for v in svc.get("volumes") or [] if isinstance(v, str) and v.endswith(":/data")]
    need(len(data) == 1 and data[0].split(":")[0] in declared_volumes, f"{name}: /data is not a declared named volume")
    data_volumes.update(v.split(":")[0] for v in data)
    test = (svc.get("healthcheck") or {}).get("test") or []
    need(test == ["CMD", "/usr/local/bin/loom-node", "healthcheck"], f"{name}: the health check is not the image's loom-node healthcheck")
    for port in svc.get("ports") or []:
        need(name == "loom-1" and str(port).startswith("127.0.0.1:"), f"{name}: port {port} is published beyond loopback")
need(len(data_volumes) == len(services), "the nodes share a data volume")
need(len(peers_lines) == 1, f"the nodes disagree on LOOM_PEERS: {sorted(map(str, peers_lines))}")
if len(peers_lines) == 1:
    line = peers_lines.pop() or ""
    peers = dict(part.split("=", 1) for part in line.split(",") if part)
    need({int(k): v for k, v in peers.items()} == members, f"LOOM_PEERS {line} does not match the nodes' ids and addresses {members}")
need(any("127.0.0.1:" in str(p) for p in services.get("loom-1", {}).get("ports") or []), "loom-1 does not publish its port on 127.0.0.1")
if problems:
    print("compose.yaml:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"compose.yaml: {len(services)} nodes, ids {sorted(ids.values())}, one peers line, secrets from files")
EOF

ARCHIVE=${LOOM_IMAGE:-}
if [ -z "$ARCHIVE" ]; then
  step "deploy/docker/build.sh"
  "$HERE/build.sh"
  ARCHIVE=$ROOT/target/image/linkloom.oci.tar
fi
[ -s "$ARCHIVE" ] || { echo "no image archive at $ARCHIVE" >&2; exit 1; }

WORK=$(mktemp -d /tmp/loom-image-check.XXXXXX)
ID=loom-image-check-$$
runc() { command runc --root "$WORK/runc" "$@"; }
cleanup() {
  runc kill "$ID" KILL >/dev/null 2>&1 || true
  runc delete --force "$ID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "image check failed: $*" >&2
  if [ -s "$WORK/node.log" ]; then echo "--- the node's log (last 30 lines)" >&2; tail -30 "$WORK/node.log" >&2; fi
  exit 1
}

step "unpacking $ARCHIVE (skopeo, umoci)"
skopeo copy --quiet "oci-archive:$ARCHIVE" "oci:$WORK/layout:check"
umoci unpack --image "$WORK/layout:check" "$WORK/bundle" >"$WORK/umoci.log" 2>&1 || { cat "$WORK/umoci.log"; fail "umoci unpack"; }
BUNDLE=$WORK/bundle
ROOTFS=$BUNDLE/rootfs

step "the image's configuration"
skopeo inspect --config "oci:$WORK/layout:check" >"$WORK/image-config.json"
"$PYTHON" - "$WORK/image-config.json" <<'EOF' || fail "image configuration"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
env = dict(e.split("=", 1) for e in c.get("Env", []))
labels = c.get("Labels") or {}
expect = {
    "user": (c.get("User"), "65532:65532"),
    "entrypoint": (c.get("Entrypoint"), ["/usr/local/bin/loom-node"]),
    "LOOM_DATA_DIR": (env.get("LOOM_DATA_DIR"), "/data"),
    "LOOM_LISTEN": (env.get("LOOM_LISTEN"), "0.0.0.0:8080"),
    "exposed ports": (sorted(c.get("ExposedPorts") or {}), ["8080/tcp"]),
    "volumes": (sorted(c.get("Volumes") or {}), ["/data"]),
}
bad = [f"{k}: {got!r}, expected {want!r}" for k, (got, want) in expect.items() if got != want]
for label in ("title", "description", "version", "revision", "created", "licenses"):
    if not labels.get(f"org.opencontainers.image.{label}"):
        bad.append(f"no org.opencontainers.image.{label} label")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"user {c['User']}, entrypoint {c['Entrypoint']}, version {labels['org.opencontainers.image.version']}, "
      f"revision {labels['org.opencontainers.image.revision']}")
EOF

step "the image's files: exactly these, no shell"
expected=(
  ./data ./etc ./etc/group ./etc/passwd ./etc/ssl ./etc/ssl/certs ./etc/ssl/certs/ca-certificates.crt
  ./tmp ./usr ./usr/local ./usr/local/bin ./usr/local/bin/loom ./usr/local/bin/loom-node
)
actual=$(cd "$ROOTFS" && find . -mindepth 1 | sort)
for shell in bin/sh usr/bin/sh bin/bash bin/busybox; do
  if [ -e "$ROOTFS/$shell" ] || [ -L "$ROOTFS/$shell" ]; then fail "the image has a shell: /$shell"; fi
done
diff <(printf '%s\n' "${expected[@]}") <(echo "$actual") || fail "unexpected files in the image (- expected, + found)"
[ "$(stat -c '%u:%g %a' "$ROOTFS/data")" = "$UID_GID:$UID_GID 700" ] || fail "/data is $(stat -c '%u:%g %a' "$ROOTFS/data")"
[ "$(stat -c '%u:%g %a' "$ROOTFS/tmp")" = "0:0 1777" ] || fail "/tmp is $(stat -c '%u:%g %a' "$ROOTFS/tmp")"
for bin in loom-node loom; do
  path=$ROOTFS/usr/local/bin/$bin
  what=$(file -b "$path")
  case "$what" in *"statically linked"* | *"static-pie linked"*) ;; *) fail "$bin is not static: $what" ;; esac
  if readelf -lW "$path" | grep -q 'program interpreter' || readelf -dW "$path" | grep -q '(NEEDED)'; then
    fail "$bin asks for an interpreter or shared libraries"
  fi
  echo "$bin: ${what%%, BuildID*}"
done
bundle=$ROOTFS/etc/ssl/certs/ca-certificates.crt
certs=$(grep -c 'BEGIN CERTIFICATE' "$bundle")
[ "$certs" -ge 100 ] || fail "the CA bundle holds $certs certificates"
# The CAs this machine's admin added (a proxy's, say) must not come along into the image.
"$PYTHON" - "$bundle" /usr/local/share/ca-certificates <<'EOF' || fail "the image trusts a CA added on this machine"
import glob, re, sys
pem = lambda text: set(re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S))
image = pem(open(sys.argv[1]).read())
local = set().union(*[pem(open(p).read()) for p in glob.glob(f"{sys.argv[2]}/**/*.crt", recursive=True)])
sys.exit(1 if image & local else 0)
EOF
printf '%s files, as expected; /data %s:%s 700; /tmp 1777; no /bin/sh; %s CA certificates\n' \
  "${#expected[@]}" "$UID_GID" "$UID_GID" "$certs"

step "running the image with runc (host network, read-only root, no capabilities, /data and a token file mounted)"
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -m 0700 "$WORK/data" "$WORK/secrets" "$WORK/cli"
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$WORK/secrets/admin_token"
printf 'token = "%s"\n' "$TOKEN" >"$WORK/cli/config.toml"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth-header"
chown -R "$UID_GID:$UID_GID" "$WORK/data" "$WORK/secrets" "$WORK/cli"
chmod 0400 "$WORK/secrets/admin_token" "$WORK/cli/config.toml"
"$PYTHON" - "$BUNDLE/config.json" "$WORK" "$PORT" <<'EOF' || fail "runtime configuration"
import json, sys
path, work, port = sys.argv[1], sys.argv[2], sys.argv[3]
spec = json.load(open(path))
process = spec["process"]
# umoci derived these from the image: check them rather than set them.
user, args = process["user"], process["args"]
if (user.get("uid"), user.get("gid")) != (65532, 65532) or args != ["/usr/local/bin/loom-node"]:
    sys.exit(f"runtime user {user} / args {args} are not the image's")
process["terminal"] = False
# What a careful runtime gives a non-root process: no capabilities, no way to gain privileges.
process["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
process["noNewPrivileges"] = True
env = [e for e in process["env"] if not e.startswith("LOOM_LISTEN=")]
env += [f"LOOM_LISTEN=127.0.0.1:{port}", "LOOM_ADMIN_TOKEN_FILE=/run/secrets/admin_token"]
process["env"] = env
spec["root"]["readonly"] = True
linux = spec["linux"]
linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
bind = lambda src, dst, mode: {"destination": dst, "type": "bind", "source": src, "options": ["rbind", mode]}
spec["mounts"] += [
    bind(f"{work}/data", "/data", "rw"),
    bind(f"{work}/secrets/admin_token", "/run/secrets/admin_token", "ro"),
    bind(f"{work}/cli/config.toml", "/etc/loom/cli/config.toml", "ro"),
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=64m"]},
]
json.dump(spec, open(path, "w"), indent=2)
EOF
(cd "$BUNDLE" && runc run -d --pid-file "$WORK/pid" "$ID" </dev/null >"$WORK/node.log" 2>&1) || fail "runc run"

# get PATH: the HTTP status of GET $URL$PATH, with the token when WITH_TOKEN=1.
get() {
  local auth=()
  [ "${WITH_TOKEN:-0}" = 1 ] && auth=(-H "@$WORK/auth-header")
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${auth[@]}" "$URL$1" || true
}
# wait_for PATH: until GET PATH answers 200, for at most $START_WAIT_S seconds.
wait_for() {
  local deadline=$((SECONDS + START_WAIT_S))
  while [ "$(get "$1")" != 200 ]; do
    [ "$(runc state "$ID" 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = running ] \
      || fail "the container stopped while waiting for $1"
    [ $SECONDS -lt $deadline ] || fail "$1 did not answer 200 within ${START_WAIT_S}s (last: $(get "$1"))"
    sleep 0.5
  done
}
wait_for /healthz
echo "/healthz: 200"
wait_for /readyz
echo "/readyz: 200"
[ "$(WITH_TOKEN=1 get /api/v1/cluster)" = 200 ] || fail "GET /api/v1/cluster with the token: $(WITH_TOKEN=1 get /api/v1/cluster)"
[ "$(get /api/v1/cluster)" = 401 ] || fail "GET /api/v1/cluster without a token answered $(get /api/v1/cluster), not 401"
echo "GET /api/v1/cluster: 200 with the token, 401 without"
ui_type=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 3 "$URL/" || true)
case "$ui_type" in "200 text/html"*) echo "GET /: the web UI ($ui_type)" ;; *) fail "GET / answered $ui_type, not the web UI" ;; esac

pid=$(cat "$WORK/pid")
ids=$(awk '/^Uid:|^Gid:/ { print $1, $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$ids" = "$(printf 'Uid: %s %s %s %s\nGid: %s %s %s %s' $UID_GID $UID_GID $UID_GID $UID_GID $UID_GID $UID_GID $UID_GID $UID_GID)" ] \
  || fail "the node runs as: $ids"
[ "$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")" = 0000000000000000 ] || fail "the node has capabilities: $(grep ^Cap "/proc/$pid/status")"
echo "the node (pid $pid) runs as uid and gid $UID_GID, with no capabilities"
owners=$(find "$WORK/data" -mindepth 1 -printf '%u:%g\n' | sort -u | tr '\n' ' ')
[ "$owners" = "$UID_GID:$UID_GID " ] || fail "files in /data are owned by $owners"
echo "/data: $(find "$WORK/data" -mindepth 1 | wc -l) entries, all owned by $UID_GID"

step "the image's loom, run inside the container"
inside() { runc exec "$ID" "$@"; }
version=$(inside /usr/local/bin/loom --version) || fail "loom --version"
node_version=$(inside /usr/local/bin/loom-node --version) || fail "loom-node --version"
echo "$version; $node_version"
members=$(inside /usr/local/bin/loom --server "$URL" cluster members) || fail "loom cluster members"
echo "$members"
echo "$members" | grep -q leader || fail "loom cluster members shows no leader"
status=$(inside /usr/local/bin/loom --server "$URL" status) || fail "loom status"
echo "$status"
echo "$status" | grep -q '1/1 nodes up' || fail "loom status does not show the node up"
# The Dockerfile's HEALTHCHECK, as written but for the port.
mapfile -t health < <(grep -A1 '^HEALTHCHECK' "$HERE/Dockerfile" | sed -n 's/^ *CMD \(\[.*\]\)$/\1/p' \
  | "$PYTHON" -c 'import json, sys; print("\n".join(json.loads(sys.stdin.read())))')
[ "${#health[@]}" -gt 1 ] || fail "no HEALTHCHECK CMD found in the Dockerfile"
inside "${health[@]}" >/dev/null || fail "the Dockerfile's health check command (${health[*]}) failed"
echo "the Dockerfile's health check command (${health[*]}): exit 0"
inside /usr/local/bin/loom-node healthcheck --ready >/dev/null || fail "loom-node healthcheck --ready failed on a ready node"
if inside /usr/local/bin/loom-node healthcheck --listen 127.0.0.1:1 >/dev/null 2>&1; then
  fail "loom-node healthcheck passed against a port nothing listens on"
fi
echo "loom-node healthcheck: --ready passes on a ready node, and it fails where no node answers"

step "SIGTERM: the node stops cleanly"
runc kill "$ID" TERM
deadline=$((SECONDS + STOP_WAIT_S))
until [ "$(runc state "$ID" 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)" = stopped ]; do
  [ $SECONDS -lt $deadline ] || fail "the node did not stop within ${STOP_WAIT_S}s of SIGTERM"
  sleep 0.5
done
grep -q 'stopped cleanly' "$WORK/node.log" || fail "no 'stopped cleanly' in the node's log"
echo "stopped cleanly"
runc delete "$ID"

echo
echo "image: $ARCHIVE, $(stat -c %s "$ARCHIVE" | awk '{ printf "%.1f MiB", $1 / 1048576 }')"
echo "image check: passed"
