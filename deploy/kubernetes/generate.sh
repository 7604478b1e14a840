#!/usr/bin/env bash
# Writes linkloom.yaml beside this script: the Helm chart deploy/helm/linkloom rendered as plain
# manifests for the namespace `linkloom`, with the credentials in an existing Secret. Takes helm
# from $HELM, else the one deploy/helm/check.sh builds, else PATH. deploy/helm/check.sh renders it
# again and fails if the file differs.
#
#   deploy/kubernetes/generate.sh                 # rewrites deploy/kubernetes/linkloom.yaml
#   deploy/kubernetes/generate.sh OUT.yaml        # writes OUT.yaml instead
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/linkloom.yaml}
HELM=${HELM:-}
if [ -z "$HELM" ]; then
  if [ -x "$HOME/.cache/linkloom/bin/helm" ]; then HELM="$HOME/.cache/linkloom/bin/helm"; else HELM=helm; fi
fi
command -v "$HELM" >/dev/null 2>&1 || { echo "no helm: run deploy/helm/check.sh once (it builds one) or set HELM" >&2; exit 1; }

# Relative paths, so the command in the header is the one that ran.
cd "$ROOT"
body=$(timeout 120 "$HELM" template linkloom deploy/helm/linkloom --namespace linkloom --set auth.existingSecret=linkloom-auth)
{
  cat <<'HEADER'
# GENERATED from the Helm chart deploy/helm/linkloom by deploy/kubernetes/generate.sh; do not edit.
# It runs:
#   helm template linkloom deploy/helm/linkloom --namespace linkloom --set auth.existingSecret=linkloom-auth
# and deploy/helm/check.sh fails when this file differs from what that prints.
#
# Three Link Loom nodes (a StatefulSet) in the namespace `linkloom`, with their Services and a
# PodDisruptionBudget. Create the namespace and the Secret with the admin token and the cluster
# secret first, then apply:
#   kubectl create namespace linkloom
#   kubectl -n linkloom create secret generic linkloom-auth \
#     --from-literal=admin-token="$(openssl rand -hex 32)" \
#     --from-literal=cluster-secret="$(openssl rand -hex 32)"
#   kubectl apply -f deploy/kubernetes/linkloom.yaml
# To change anything else, install the chart instead (deploy/helm/linkloom/README.md).
HEADER
  printf '%s\n' "$body"
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
