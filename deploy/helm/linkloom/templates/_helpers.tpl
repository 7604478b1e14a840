{{/*
Names. The full name stays within 50 characters so `<fullname>-headless` (a Service name) stays
within 63 and a pod's name plus the StatefulSet's revision-hash label fits too.
*/}}
{{- define "linkloom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "linkloom.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The headless Service that gives every pod its stable DNS name. */}}
{{- define "linkloom.headlessName" -}}
{{- printf "%s-headless" (include "linkloom.fullname" .) }}
{{- end }}

{{- define "linkloom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "linkloom.labels" -}}
helm.sh/chart: {{ include "linkloom.chart" . }}
{{ include "linkloom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "linkloom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linkloom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "linkloom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "linkloom.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "linkloom.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The Secret holding `admin-token` and `cluster-secret`: the user's, or the one the chart creates.
Rendering fails when there is neither, rather than inventing secrets that would change on every
upgrade.
*/}}
{{- define "linkloom.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if and .Values.auth.adminToken .Values.auth.clusterSecret }}
{{- printf "%s-auth" (include "linkloom.fullname" .) }}
{{- else }}
{{- fail "linkloom needs an admin token and a cluster secret: create a Secret with the keys admin-token and cluster-secret and set auth.existingSecret to its name (kubectl create secret generic linkloom-auth --from-literal=admin-token=$(openssl rand -hex 32) --from-literal=cluster-secret=$(openssl rand -hex 32)), or set both auth.adminToken and auth.clusterSecret" }}
{{- end }}
{{- end }}

{{/* How many pods found the cluster; checks the counts (a Raft voter count must be odd). */}}
{{- define "linkloom.founders" -}}
{{- $replicas := int .Values.replicas }}
{{- if or (lt $replicas 1) (eq (mod $replicas 2) 0) }}
{{- fail (printf "replicas must be odd (1, 3, 5, ...), not %d: a Raft majority of an even count tolerates no more failures than the odd count below it" $replicas) }}
{{- end }}
{{- $founders := $replicas }}
{{- if not (kindIs "invalid" .Values.founders) }}
{{- $founders = int .Values.founders }}
{{- end }}
{{- if or (lt $founders 1) (eq (mod $founders 2) 0) (gt $founders $replicas) }}
{{- fail (printf "founders must be odd and at most replicas (%d), not %d" $replicas $founders) }}
{{- end }}
{{- $founders }}
{{- end }}

{{/* This pod's address as the others reach it, or pod N's: <sts>-N.<headless>.<ns>.svc.<domain>:<port>. */}}
{{- define "linkloom.podAddress" -}}
{{- $root := index . 0 }}
{{- printf "%s.%s.%s.svc.%s:%d" (index . 1) (include "linkloom.headlessName" $root) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.port) }}
{{- end }}

{{/* LOOM_PEERS: `1=<sts>-0...:8080,2=<sts>-1...:8080,...`; node ids are pod ordinals plus one. */}}
{{- define "linkloom.peers" -}}
{{- $fullname := include "linkloom.fullname" . }}
{{- $peers := list }}
{{- range $ordinal := until (int (include "linkloom.founders" .)) }}
{{- $pod := printf "%s-%d" $fullname $ordinal }}
{{- $peers = append $peers (printf "%d=%s" (add1 $ordinal) (include "linkloom.podAddress" (list $ $pod))) }}
{{- end }}
{{- join "," $peers }}
{{- end }}

{{/*
LOOM_ALLOWED_HOSTS: the client Service's names, the pod's own IP (Prometheus scrapes pods by IP)
and extraAllowedHosts. The node adds its advertised name and loopback itself.
*/}}
{{- define "linkloom.allowedHosts" -}}
{{- $svc := include "linkloom.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $hosts := list "$(POD_IP)" $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) }}
{{- join "," (concat $hosts .Values.extraAllowedHosts | uniq) }}
{{- end }}

{{/*
On an upgrade, refuses to change the founders of a running cluster: pods given a new LOOM_PEERS
would found a cluster of their own instead of joining (README.md, "Scaling"). `lookup` finds
nothing under `helm template` and dry runs, so this acts only against a live cluster.
*/}}
{{- define "linkloom.checkFoundersUnchanged" -}}
{{- $live := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "linkloom.fullname" .) }}
{{- $want := include "linkloom.peers" . }}
{{- range (dig "spec" "template" "spec" "containers" list $live) }}
{{- range (.env | default list) }}
{{- if and (eq .name "LOOM_PEERS") (ne (.value | default "") $want) }}
{{- fail (printf "the founders of a running cluster are fixed, but LOOM_PEERS would change from %s to %s. To grow the cluster, keep `founders` at the count it started with (--set founders=N), raise `replicas`, and add the new nodes with `loom cluster add` (see the chart's README, Scaling)" .value $want) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
