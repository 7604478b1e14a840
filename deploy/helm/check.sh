#!/usr/bin/env bash
# Checks deploy/helm/linkloom offline (no cluster needed):
#   - `helm lint --strict` with the default values and with every option on;
#   - every document `helm template` renders validates, unknown fields refused, against the
#     Kubernetes API schemas shipped by the PyPI package kubernetes-validate (K8S_VERSIONS); the
#     ServiceMonitor (a CRD's kind, in no such schema) is checked field by field instead;
#   - what matters about the pods (assert_render.py): founder ids and peer addresses, no secret in
#     the environment, non-root and read-only, probes, anti-affinity, the Services, the PDB;
#   - renders that must fail do, with their message: no credentials, an even replica count, values
#     outside the schema; and an upgrade that would change a running cluster's founders;
#   - deploy/kubernetes/linkloom.yaml is what deploy/kubernetes/generate.sh renders today.
# Installs what is missing, cached under ~/.cache/linkloom: helm (built with `go install` from the Go
# module proxy; Go from Debian's golang-go when no `go` exists) and a venv with kubernetes-validate.
#
#   deploy/helm/check.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHART="$HERE/linkloom"
CACHE="$HOME/.cache/linkloom"
HELM_VERSION=v3.22.0
K8S_VALIDATE_VERSION=1.37.0
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest kubernetes-validate
# $K8S_VALIDATE_VERSION has schemas for: every document must be valid for both.
K8S_VERSIONS=(1.25.0 1.37.0)

step() { printf '==> %s\n' "$*"; }

# helm, built once into $CACHE/bin with a Go cache of its own (so a user's GOPATH is untouched),
# with the link flags of helm's own release build: without them it calls itself v3.22 and
# assumes Kubernetes 1.20 (refusing charts that need newer, and linting for 1.20's deprecations).
# 1.37 is what helm v3.22.0's Makefile derives from its k8s.io/client-go v0.37.0.
HELM="$CACHE/bin/helm"
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/chartutil pkg/lint/rules; do
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done
helm_built() { [ -x "$HELM" ] && [ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; }
if ! helm_built; then
  if ! command -v go >/dev/null 2>&1; then
    step "installing Debian's golang-go (to build helm)"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends golang-go >/dev/null
  fi
  step "building helm $HELM_VERSION with $(go version) (a few minutes, once)"
  mkdir -p "$CACHE/bin" "$CACHE/go"
  # GOTOOLCHAIN=auto: a Go older than helm's go.mod asks for fetches the newer toolchain from the
  # module proxy (Debian's go defaults to `local`, which would refuse). -modcacherw: the module
  # cache can be deleted without chmod.
  env GOPATH="$CACHE/go" GOCACHE="$CACHE/go/cache" GOMODCACHE="$CACHE/go/mod" GOBIN="$CACHE/bin" \
    GOTOOLCHAIN=auto GOFLAGS=-modcacherw CGO_ENABLED=0 \
    timeout 1800 nice -n 10 go install -trimpath -ldflags "$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 2>&1 \
    | { grep -v '^go: downloading' || true; }
fi
helm_built || { echo "built helm, but $HELM does not say it is $HELM_VERSION"; exit 1; }

# kubernetes-validate in a venv of its own.
VENV="$CACHE/venv-k8s"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kubernetes-validate') != '$K8S_VALIDATE_VERSION')" 2>/dev/null; then
  step "installing kubernetes-validate $K8S_VALIDATE_VERSION into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$K8S_VALIDATE_VERSION"
fi
echo "helm $HELM_VERSION ($("$HELM" version --template '{{.GoVersion}}')), kubernetes-validate $K8S_VALIDATE_VERSION, Kubernetes schemas ${K8S_VERSIONS[*]}"

WORK=$(mktemp -d /tmp/loom-helm-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# helm keeps no state of ours anywhere else, and has no repositories to reach.
export HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data"
helm() { timeout 120 "$HELM" "$@"; }
cd "$ROOT"
CHART_REL=deploy/helm/linkloom

# Secrets made up for this run: the assertions look for them where they must not be.
admin_token="admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cluster_secret="cluster-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat > "$WORK/auth.yaml" <<YAML
auth:
  adminToken: "$admin_token"
  clusterSecret: "$cluster_secret"
YAML
# Every option on.
cat > "$WORK/all.yaml" <<'YAML'
replicas: 5
founders: 3
clusterDomain: k8s.example.internal
image:
  tag: "0.1.0-rc1"
tls:
  enabled: true
  secretName: linkloom-tls
webhooks:
  secretName: linkloom-webhooks
podAntiAffinity: hard
extraAllowedHosts: [loom.example.com]
httpAllow: "api.example.com,10.0.0.0/8"
extraEnv:
  - {name: LOOM_RATE_LIMIT, value: "500"}
persistence:
  size: 50Gi
  storageClass: fast-ssd
  annotations: {example.com/backup: "daily"}
nodeSelector: {kubernetes.io/os: linux}
tolerations:
  - {key: dedicated, operator: Equal, value: linkloom, effect: NoSchedule}
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
podAnnotations: {example.com/team: platform}
podLabels: {example.com/tier: scheduler}
priorityClassName: high-priority
serviceAccount:
  annotations: {example.com/role: none}
service:
  type: LoadBalancer
  annotations: {example.com/lb: internal}
  loadBalancerSourceRanges: [10.0.0.0/8]
metrics:
  serviceMonitor:
    enabled: true
    labels: {release: prometheus}
    tokenSecret: {name: prometheus-viewer, key: token}
networkPolicy:
  enabled: true
  clients:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    - podSelector: {matchLabels: {linkloom-client: "true"}}
YAML

step "helm lint --strict (defaults, then every option on)"
helm lint --strict "$CHART_REL" -f "$WORK/auth.yaml" --namespace linkloom >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log"; exit 1; }
helm lint --strict "$CHART_REL" -f "$WORK/auth.yaml" -f "$WORK/all.yaml" --namespace linkloom >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log"; exit 1; }
tail -1 "$WORK/lint.log"

assert() { timeout 300 "$VENV/bin/python" "$HERE/assert_render.py" "$@" "${K8S_VERSIONS[@]/#/--k8s=}"; }
secrets=(--secret "$admin_token" --secret "$cluster_secret")

step "helm template, kubernetes-validate, assertions"
helm template linkloom "$CHART_REL" --namespace linkloom -f "$WORK/auth.yaml" > "$WORK/default.yaml"
assert "$WORK/default.yaml" --release linkloom --namespace linkloom --replicas 3 "${secrets[@]}"
helm template linkloom "$CHART_REL" --namespace linkloom -f "$WORK/auth.yaml" --set replicas=5 > "$WORK/five.yaml"
assert "$WORK/five.yaml" --release linkloom --namespace linkloom --replicas 5 "${secrets[@]}"
helm template loom-prod "$CHART_REL" --namespace prod -f "$WORK/auth.yaml" -f "$WORK/all.yaml" > "$WORK/all-options.yaml"
assert "$WORK/all-options.yaml" --release loom-prod --namespace prod --replicas 5 --founders 3 \
  --domain k8s.example.internal --image ghcr.io/linkloom/linkloom:0.1.0-rc1 "${secrets[@]}" \
  --tls-secret linkloom-tls --anti-affinity hard --extra-host loom.example.com \
  --service-monitor --scrape-token prometheus-viewer/token --network-policy
# The options the assertions do not cover one by one, as rendered.
for want in 'storageClassName: "fast-ssd"' 'storage: "50Gi"' 'LOOM_HTTP_ALLOW' 'LOOM_RATE_LIMIT' \
  'priorityClassName: high-priority' 'topologyKey: topology.kubernetes.io/zone' 'app.kubernetes.io/instance: loom-prod' \
  'kubernetes.io/os: linux' 'key: dedicated' 'example.com/team: platform' 'example.com/tier: scheduler' 'type: LoadBalancer' \
  'example.com/lb: internal' 'example.com/role: none' 'example.com/backup: daily' 'release: prometheus' 'loadBalancerSourceRanges:' \
  'LOOM_WEBHOOK_SECRETS_FILE' 'secretName: linkloom-webhooks'; do
  grep -qF -- "$want" "$WORK/all-options.yaml" || { echo "the all-options rendering lacks \`$want\`"; exit 1; }
done

digest="sha256:$(printf '%064d' 7)"
helm template linkloom "$CHART_REL" --namespace linkloom -f "$WORK/auth.yaml" --set image.digest="$digest" > "$WORK/digest.yaml"
grep -qF "image: \"ghcr.io/linkloom/linkloom@$digest\"" "$WORK/digest.yaml" || { echo "image.digest does not pin the image"; exit 1; }

step "renders that must fail, with their message"
# must_fail MESSAGE ARGS...: `helm template ARGS` fails and says MESSAGE.
must_fail() {
  local message=$1; shift
  if helm template linkloom "$CHART_REL" --namespace linkloom "$@" >"$WORK/fail.log" 2>&1; then
    echo "helm template $* rendered; it must fail with: $message"; exit 1
  fi
  grep -qF -- "$message" "$WORK/fail.log" || { echo "helm template $* failed, but without \`$message\`:"; cat "$WORK/fail.log"; exit 1; }
  echo "refused, as it must be: $message"
}
must_fail "linkloom needs an admin token and a cluster secret"
must_fail "set auth.existingSecret to its name" --set auth.adminToken=only-one-of-the-two
must_fail "replicas must be odd (1, 3, 5, ...), not 2" -f "$WORK/auth.yaml" --set replicas=2
must_fail "founders must be odd and at most replicas (5), not 4" -f "$WORK/auth.yaml" --set replicas=5 --set founders=4
must_fail "founders must be odd and at most replicas (3), not 5" -f "$WORK/auth.yaml" --set founders=5
must_fail "at '/replicas': minimum: got 0, want 1" -f "$WORK/auth.yaml" --set replicas=0
must_fail "at '/podAntiAffinity': value must be one of 'soft', 'hard'" -f "$WORK/auth.yaml" --set podAntiAffinity=sometimes
must_fail "at '/service/type': value must be one of" -f "$WORK/auth.yaml" --set service.type=ExternalName
must_fail "additional properties 'replica' not allowed" -f "$WORK/auth.yaml" --set replica=3
must_fail "tls.enabled needs tls.secretName" -f "$WORK/auth.yaml" --set tls.enabled=true

step "an upgrade keeps the founders (lookup's answer stood in by a value, in a copy of the chart)"
# `lookup` needs a live cluster; the copy reads the "live" StatefulSet from .Values.live instead,
# here the default rendering's, so the guard's own logic is what runs.
cp -r "$CHART" "$WORK/guard-chart"
rm "$WORK/guard-chart/values.schema.json"
sed -i 's|lookup "apps/v1" "StatefulSet" .Release.Namespace (include "linkloom.fullname" .)|.Values.live|' \
  "$WORK/guard-chart/templates/_helpers.tpl"
grep -q '.Values.live' "$WORK/guard-chart/templates/_helpers.tpl" || { echo "the founders guard no longer uses lookup as expected"; exit 1; }
"$VENV/bin/python" - "$WORK/default.yaml" "$WORK/live.yaml" <<'PY'
import sys, yaml
sts = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "StatefulSet")
yaml.safe_dump({"live": sts}, open(sys.argv[2], "w"))
PY
guard() { helm template linkloom "$WORK/guard-chart" --namespace linkloom -f "$WORK/auth.yaml" -f "$WORK/live.yaml" "$@"; }
guard --set replicas=3 >/dev/null
guard --set replicas=5 --set founders=3 >/dev/null
if guard --set replicas=5 >"$WORK/guard.log" 2>&1 || ! grep -qF "the founders of a running cluster are fixed" "$WORK/guard.log"; then
  echo "raising replicas without pinning founders was not refused:"; cat "$WORK/guard.log"; exit 1
fi
echo "refused, as it must be: replicas 3 -> 5 on a running cluster without founders=3"

step "deploy/kubernetes/linkloom.yaml is up to date"
HELM="$HELM" "$ROOT/deploy/kubernetes/generate.sh" "$WORK/linkloom.yaml"
if ! diff -u deploy/kubernetes/linkloom.yaml "$WORK/linkloom.yaml" > "$WORK/manifest.diff"; then
  head -40 "$WORK/manifest.diff"
  echo "deploy/kubernetes/linkloom.yaml is out of date: run deploy/kubernetes/generate.sh"
  exit 1
fi
assert deploy/kubernetes/linkloom.yaml --release linkloom --namespace linkloom --replicas 3 --existing-secret linkloom-auth

echo "helm check: passed"
