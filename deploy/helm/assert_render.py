"""Checks one rendering of the linkloom chart (deploy/helm/check.sh runs it; needs PyYAML and
kubernetes-validate, both in check.sh's venv).

Every document is validated, unknown fields refused, against the Kubernetes versions given; the
ServiceMonitor (a CRD's kind, in no such schema) is checked field by field here instead. Then
what matters about the pods is asserted: the founders' ids and addresses, secrets only as files,
non-root and read-only, probes, scheduling, the Services, the disruption budget.

    python assert_render.py RENDERED.yaml --release R --namespace NS --replicas N [options]
"""

import argparse
import base64
import sys
from pathlib import Path

import kubernetes_validate
import yaml

UID = 65532


def fail(message):
    sys.exit(f"assert_render: {message}")


def check(condition, message):
    if not condition:
        fail(message)


def validate(docs, versions):
    """Every document against every version's schema, strictly; returns the count validated."""
    validated = 0
    for doc in docs:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # no schema: check_service_monitor looks at it
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                what = f"{doc['kind']} {doc['metadata']['name']}"
                fail(f"{what} is not valid for Kubernetes {version}: {e.message} at {list(e.path)}")
        validated += 1
    return validated


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    check(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def expand(value, env):
    """What kubelet makes of `$(VAR)` references to the variables given."""
    for name, replacement in env.items():
        value = value.replace(f"$({name})", replacement)
    return value


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rendered")
    p.add_argument("--release", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--fullname", help="default: the release name if it contains `linkloom`")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--founders", type=int)
    p.add_argument("--domain", default="cluster.local")
    p.add_argument("--image", default="ghcr.io/linkloom/linkloom:0.1.0")
    p.add_argument(
        "--secret", action="append", default=[], help="a secret string that must appear in no env value"
    )
    p.add_argument("--existing-secret", help="the auth Secret is this one, not the chart's")
    p.add_argument("--tls-secret", help="TLS is on, from this Secret")
    p.add_argument("--anti-affinity", choices=["soft", "hard"], default="soft")
    p.add_argument("--extra-host", action="append", default=[])
    p.add_argument("--service-monitor", action="store_true")
    p.add_argument("--network-policy", action="store_true")
    p.add_argument(
        "--scrape-token",
        help="SECRET/KEY the ServiceMonitor's token comes from (default: the auth Secret's admin-token)",
    )
    p.add_argument("--k8s", action="append", required=True, help="Kubernetes version to validate against")
    a = p.parse_args()

    text = Path(a.rendered).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    fullname = a.fullname or (a.release if "linkloom" in a.release else f"{a.release}-linkloom")
    headless = f"{fullname}-headless"
    founders = a.founders or a.replicas
    ns = a.namespace
    validated = validate(docs, a.k8s)

    for doc in docs:
        check(
            doc["metadata"].get("namespace") == ns,
            f"{doc['kind']} {doc['metadata']['name']} is not in namespace {ns}",
        )

    # The pods.
    sts = one(docs, "StatefulSet", fullname)
    spec = sts["spec"]
    check(spec["replicas"] == a.replicas, f"replicas {spec['replicas']}, want {a.replicas}")
    check(
        spec["podManagementPolicy"] == "Parallel",
        "founders must start together (podManagementPolicy Parallel)",
    )
    check(spec["serviceName"] == headless, f"serviceName {spec['serviceName']}, want {headless}")
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    check(
        spec["selector"]["matchLabels"].items() <= pod_labels.items(),
        "the selector does not match the pod labels",
    )
    check(pod["automountServiceAccountToken"] is False, "the service account token is mounted")
    check(pod["terminationGracePeriodSeconds"] == 30, "terminationGracePeriodSeconds is not 30")
    psc = pod["securityContext"]
    for key, want in [("runAsNonRoot", True), ("runAsUser", UID), ("runAsGroup", UID), ("fsGroup", UID)]:
        check(psc.get(key) == want, f"pod securityContext.{key} is {psc.get(key)!r}, want {want!r}")
    check(psc["seccompProfile"] == {"type": "RuntimeDefault"}, "pod seccompProfile is not RuntimeDefault")

    (container,) = pod["containers"]
    check(container["image"] == a.image, f"image {container['image']}, want {a.image}")
    check(container["command"] == ["/usr/local/bin/loom-node"], f"command {container['command']}")
    csc = container["securityContext"]
    for key, want in [
        ("runAsNonRoot", True),
        ("runAsUser", UID),
        ("readOnlyRootFilesystem", True),
        ("allowPrivilegeEscalation", False),
        ("capabilities", {"drop": ["ALL"]}),
        ("seccompProfile", {"type": "RuntimeDefault"}),
    ]:
        check(csc.get(key) == want, f"container securityContext.{key} is {csc.get(key)!r}, want {want!r}")
    check(
        container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        f"ports {container['ports']}",
    )
    check(
        container["resources"]
        == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        f"resources {container['resources']}",
    )

    # Probes: HTTPS exactly when TLS is on.
    scheme = "HTTPS" if a.tls_secret else "HTTP"
    for probe, path in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ]:
        get = container[probe]["httpGet"]
        check(
            get == {"path": path, "port": "http", "scheme": scheme},
            f"{probe} is {get}, want GET {path} over {scheme}",
        )

    # The environment: configuration only, in an order kubelet can expand.
    env_list = container["env"]
    names = [e["name"] for e in env_list]
    check(len(names) == len(set(names)), f"an env variable is set twice: {names}")
    env = {e["name"]: e.get("value") for e in env_list}
    field = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in env_list if "valueFrom" in e}
    check(
        field
        == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP"},
        f"downward API variables: {field} (and nothing may come from a Secret)",
    )
    for earlier, later in [
        ("POD_NAME", "LOOM_ADVERTISE"),
        ("POD_NAMESPACE", "LOOM_ADVERTISE"),
        ("POD_IP", "LOOM_ALLOWED_HOSTS"),
    ]:
        check(names.index(earlier) < names.index(later), f"{earlier} must come before {later}, which uses it")
    want_env = {
        "LOOM_NODE_ID_FROM_HOSTNAME": "true",
        "LOOM_LISTEN": "0.0.0.0:8080",
        "LOOM_ADVERTISE": f"$(POD_NAME).{headless}.$(POD_NAMESPACE).svc.{a.domain}:8080",
        "LOOM_DATA_DIR": "/data/loom",
        "LOOM_LOG_FORMAT": "json",
        "LOOM_ADMIN_TOKEN_FILE": "/run/secrets/linkloom/admin-token",
        "LOOM_CLUSTER_SECRET_FILE": "/run/secrets/linkloom/cluster-secret",
        "LOOM_SHELL_TASKS": "off",
    }
    for name, want in want_env.items():
        check(env.get(name) == want, f"{name} is {env.get(name)!r}, want {want!r}")
    for name in ["LOOM_ADMIN_TOKEN", "LOOM_CLUSTER_SECRET", "LOOM_NODE_ID", "LOOM_INSECURE_OPEN"]:
        check(name not in env, f"{name} must not be set")

    # Founders: ids 1..founders at the pods' DNS names; each pod's advertised address (as kubelet
    # expands it) is the one the peers list gives its id (ordinal + 1, as the node derives it).
    def peer_of(ordinal):
        return f"{fullname}-{ordinal}.{headless}.{ns}.svc.{a.domain}:8080"

    want_peers = ",".join(f"{ordinal + 1}={peer_of(ordinal)}" for ordinal in range(founders))
    check(
        env.get("LOOM_PEERS") == want_peers, f"LOOM_PEERS is {env.get('LOOM_PEERS')!r},\n want {want_peers!r}"
    )
    peers = dict(part.split("=", 1) for part in env["LOOM_PEERS"].split(","))
    check(sorted(int(k) for k in peers) == list(range(1, founders + 1)), f"peer ids {sorted(peers)}")
    for ordinal in range(a.replicas):
        advertised = expand(env["LOOM_ADVERTISE"], {"POD_NAME": f"{fullname}-{ordinal}", "POD_NAMESPACE": ns})
        check(advertised == peer_of(ordinal), f"pod {ordinal} advertises {advertised}")
        if ordinal < founders:
            check(
                peers[str(ordinal + 1)] == advertised,
                f"pod {ordinal} (node {ordinal + 1}) is not where LOOM_PEERS says",
            )
    check(
        ("LOOM_JOIN" in env) == (a.replicas > founders),
        "LOOM_JOIN must be set exactly when there are pods beyond the founders",
    )
    if a.replicas > founders:
        check(env["LOOM_JOIN"] == "true", "LOOM_JOIN is not true")

    svc = fullname
    hosts = env["LOOM_ALLOWED_HOSTS"].split(",")
    for host in [
        "$(POD_IP)",
        svc,
        f"{svc}.{ns}",
        f"{svc}.{ns}.svc",
        f"{svc}.{ns}.svc.{a.domain}",
        *a.extra_host,
    ]:
        check(host in hosts, f"LOOM_ALLOWED_HOSTS lacks {host}: {hosts}")

    # Secrets: only in the chart's Secret, base64-encoded; never in plain text, never in the env.
    for secret in a.secret:
        check(secret not in text, "a secret passed to the chart appears in plain text in the rendering")
        encoded = base64.b64encode(secret.encode()).decode()
        for e in env_list:
            check(
                secret not in str(e) and encoded not in str(e), f"env variable {e['name']} carries a secret"
            )
        holders = [d["kind"] for d in docs if encoded in yaml.safe_dump(d)]
        check(holders in ([], ["Secret"]), f"a secret appears (base64) in {holders}")

    auth_name = a.existing_secret or f"{fullname}-auth"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    auth = volumes[mounts["/run/secrets/linkloom"]["name"]]["secret"]
    check(auth["secretName"] == auth_name, f"auth volume from {auth['secretName']}, want {auth_name}")
    check(auth["defaultMode"] == 0o400, f"auth volume mode {oct(auth['defaultMode'])}, want 0400")
    check({i["key"] for i in auth["items"]} == {"admin-token", "cluster-secret"}, "auth volume keys")
    check(mounts["/run/secrets/linkloom"].get("readOnly") is True, "the auth volume is writable")
    secrets = [d for d in docs if d["kind"] == "Secret"]
    if a.existing_secret:
        check(secrets == [], "the chart rendered a Secret although auth.existingSecret is set")
    else:
        check(
            [s["metadata"]["name"] for s in secrets] == [auth_name],
            f"Secrets {[s['metadata']['name'] for s in secrets]}",
        )
        decoded = {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}
        check(sorted(decoded) == ["admin-token", "cluster-secret"], f"Secret keys {sorted(decoded)}")
        check(sorted(decoded.values()) == sorted(a.secret), "the Secret does not hold the secrets passed in")
    check(mounts["/data"]["name"] == "data", "/data is not the data volume")
    check("emptyDir" in volumes[mounts["/tmp"]["name"]], "/tmp is not an emptyDir")
    (claim,) = spec["volumeClaimTemplates"]
    check(claim["metadata"]["name"] == "data", "the volume claim template is not `data`")

    if a.tls_secret:
        tls = volumes[mounts["/run/secrets/linkloom-tls"]["name"]]["secret"]
        check(tls["secretName"] == a.tls_secret, f"TLS volume from {tls['secretName']}")
        check(mounts["/run/secrets/linkloom-tls"].get("readOnly") is True, "the TLS volume is writable")
        for name, file in [
            ("LOOM_TLS_CERT", "tls.crt"),
            ("LOOM_TLS_KEY", "tls.key"),
            ("LOOM_TLS_CA", "ca.crt"),
        ]:
            check(env.get(name) == f"/run/secrets/linkloom-tls/{file}", f"{name} is {env.get(name)!r}")
    else:
        check(not any(n.startswith("LOOM_TLS_") for n in env), "LOOM_TLS_* set without TLS")

    anti = pod["affinity"]["podAntiAffinity"]
    if a.anti_affinity == "hard":
        check(list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"], f"hard anti-affinity: {anti}")
        term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
    else:
        check(
            list(anti) == ["preferredDuringSchedulingIgnoredDuringExecution"], f"soft anti-affinity: {anti}"
        )
        term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    check(
        term["labelSelector"]["matchLabels"].items() <= pod_labels.items(),
        "anti-affinity does not select these pods",
    )

    # Services.
    head = one(docs, "Service", headless)["spec"]
    check(head["clusterIP"] == "None", "the headless Service has a cluster IP")
    check(head["publishNotReadyAddresses"] is True, "founders cannot find each other before ready")
    client = one(docs, "Service", svc)["spec"]
    for s, what in [(head, "headless"), (client, "client")]:
        check(s["selector"].items() <= pod_labels.items(), f"the {what} Service does not select the pods")
        check(
            [(p["name"], p["port"], p["targetPort"]) for p in s["ports"]] == [("http", 8080, "http")],
            f"{what} ports {s['ports']}",
        )

    pdb = one(docs, "PodDisruptionBudget")
    check(pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1, f"PDB {pdb['spec']}")
    check(
        pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(),
        "the PDB does not select the pods",
    )
    sa = one(docs, "ServiceAccount")
    check(sa["automountServiceAccountToken"] is False, "the ServiceAccount mounts its token")
    check(pod["serviceAccountName"] == sa["metadata"]["name"], "the pods do not use the ServiceAccount")

    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    check(bool(monitors) == a.service_monitor, f"{len(monitors)} ServiceMonitors")
    if monitors:
        scrape_token = a.scrape_token or f"{auth_name}/admin-token"
        check_service_monitor(monitors[0], docs, headless, scrape_token, a.tls_secret)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    check(bool(policies) == a.network_policy, f"{len(policies)} NetworkPolicies")
    if policies:
        np = policies[0]["spec"]
        check(
            np["podSelector"]["matchLabels"].items() <= pod_labels.items(),
            "the NetworkPolicy does not select the pods",
        )
        check(np["policyTypes"] == ["Ingress"], f"policyTypes {np['policyTypes']}")
        peers_rule = np["ingress"][0]
        check(
            peers_rule["from"][0]["podSelector"]["matchLabels"].items() <= pod_labels.items(),
            "nodes cannot reach each other",
        )
        check(
            all(r["ports"] == [{"port": "http", "protocol": "TCP"}] for r in np["ingress"]),
            "a rule opens more than the port",
        )
        check(len(np["ingress"]) == 2, "no rule for networkPolicy.clients")

    print(
        f"{a.rendered}: {len(docs)} documents, {validated} valid for Kubernetes "
        f"{' and '.join(a.k8s)} (strict); "
        f"{a.replicas} pods, founders {', '.join(sorted(peers, key=int))}; assertions hold"
    )


# The ServiceMonitor fields this chart may use (a subset of prometheus-operator's v1 CRD).
MONITOR_SPEC = {"selector", "namespaceSelector", "endpoints"}
MONITOR_ENDPOINT = {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization", "tlsConfig"}


def check_service_monitor(sm, docs, headless, scrape_token, tls_secret):
    check(sm["apiVersion"] == "monitoring.coreos.com/v1", f"ServiceMonitor apiVersion {sm['apiVersion']}")
    spec = sm["spec"]
    check(
        set(spec) <= MONITOR_SPEC,
        f"ServiceMonitor spec fields {set(spec) - MONITOR_SPEC} are not known to this check",
    )
    head = one(docs, "Service", headless)
    labels = head["metadata"]["labels"]
    check(
        spec["selector"]["matchLabels"].items() <= labels.items(),
        "the ServiceMonitor does not select the headless Service",
    )
    selected = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Service"
        and spec["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]
    check(selected == [headless], f"the ServiceMonitor selects {selected}, want only {headless}")
    check(spec["namespaceSelector"] == {"matchNames": [sm["metadata"]["namespace"]]}, "namespaceSelector")
    (endpoint,) = spec["endpoints"]
    check(
        set(endpoint) <= MONITOR_ENDPOINT,
        f"endpoint fields {set(endpoint) - MONITOR_ENDPOINT} are not known to this check",
    )
    check(endpoint["port"] == "http" and endpoint["path"] == "/metrics", f"endpoint {endpoint}")
    check(endpoint["scheme"] == ("https" if tls_secret else "http"), f"scheme {endpoint['scheme']}")
    for key in ["interval", "scrapeTimeout"]:
        check(isinstance(endpoint[key], str) and endpoint[key][-1] in "smh", f"{key} {endpoint[key]!r}")
    auth = endpoint["authorization"]
    check(auth["type"] == "Bearer" and set(auth["credentials"]) == {"name", "key"}, f"authorization {auth}")
    token = f"{auth['credentials']['name']}/{auth['credentials']['key']}"
    check(token == scrape_token, f"scrape token from {token}, want {scrape_token}")
    if tls_secret:
        tls = endpoint["tlsConfig"]
        check(set(tls) == {"serverName", "ca"}, f"tlsConfig {tls}")
        check(tls["ca"] == {"secret": {"name": tls_secret, "key": "ca.crt"}}, f"tlsConfig.ca {tls['ca']}")
    else:
        check("tlsConfig" not in endpoint, "tlsConfig without TLS")


if __name__ == "__main__":
    main()
