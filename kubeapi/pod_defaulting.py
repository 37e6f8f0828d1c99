"""Pod defaulting: the values kube-apiserver fills in (SetDefaults_Pod and friends, plus the
admission plugins that every cluster runs: DefaultTolerationSeconds, Priority)."""
from __future__ import annotations

from kubeapi.quantity import parse_quantity

# DefaultTolerationSeconds admission: how long a pod stays on a NotReady/unreachable node.
_DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def _image_pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_probe(probe: dict | None) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _default_container(c: dict) -> None:
    if not isinstance(c, dict):
        return
    if isinstance(c.get("image"), str) and c["image"]:
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    resources = c.setdefault("resources", {})
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        # Requests default to limits for every resource that has a limit but no request.
        requests = resources.setdefault("requests", {})
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(name))


def _default_volume(v: dict) -> None:
    if not isinstance(v, dict):
        return
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for kind in ("configMap", "secret", "projected", "downwardAPI"):
        if isinstance(v.get(kind), dict):
            v[kind].setdefault("defaultMode", 420)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")


def qos_class(spec: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' cpu/memory requests and limits."""
    requests_seen = limits_seen = False
    guaranteed = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {} if isinstance(c, dict) else {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            if name in req and parse_quantity(req[name]) != 0:
                requests_seen = True
            if name in lim and parse_quantity(lim[name]) != 0:
                limits_seen = True
            if name not in lim or parse_quantity(lim[name]) != parse_quantity(
                    req.get(name, lim[name])):
                guaranteed = False
    if not requests_seen and not limits_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_pod(pod: dict) -> None:
    """Applies the defaults in place. Safe to call again on an already defaulted pod."""
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if spec.get("hostNetwork"):
        for c in spec.get("containers") or []:
            for port in (c.get("ports") or []) if isinstance(c, dict) else []:
                if isinstance(port, dict) and "containerPort" in port:
                    port.setdefault("hostPort", port["containerPort"])
    for field in ("containers", "initContainers", "ephemeralContainers"):
        if isinstance(spec.get(field), list):
            for c in spec[field]:
                _default_container(c)
    for v in spec.get("volumes") or []:
        _default_volume(v)


def admit_pod(pod: dict) -> None:
    """What admission adds on create only: the default NoExecute toleration seconds."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.setdefault("tolerations", [])
    if isinstance(tolerations, list):
        for default in _DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and t.get("key") == default["key"] and
                       t.get("effect") in (None, "", "NoExecute") for t in tolerations):
                tolerations.append(dict(default))
