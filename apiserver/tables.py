"""Server-side Table output (Accept: application/json;as=Table;g=meta.k8s.io;v=v1): the columns
kube-apiserver prints for each resource, with priority-1 columns shown by `kubectl get -o wide`."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

NONE = "<none>"


def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration: 45s, 5m3s, 3h, 2d4h, 1y30d..."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // (24 * 365)}y{(h // 24) % 365}d"
    return f"{h // (24 * 365)}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        t = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(timezone.utc) - t).total_seconds())


def column(name: str, kind: str = "string", priority: int = 0, fmt: str = "",
           description: str = "") -> dict:
    """One TableColumnDefinition."""
    return {"name": name, "type": kind, "format": fmt, "description": description,
            "priority": priority}


_col = column


_NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
_AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time "
            "when this object was created.")


def _meta(o: dict) -> dict:
    return o.get("metadata") or {}


def pod_status_reason(pod: dict) -> str:
    """The STATUS column, as kubectl's printPod works it out."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    init_total = len(spec.get("initContainers") or [])
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or (f"Signal:{term['signal']}"
                                if term.get("signal") else f"ExitCode:{term.get('exitCode')}"))
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{init_total}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") \
                    else f"ExitCode:{term.get('exitCode')}"
            elif cs.get("ready") and state.get("running"):
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
            reason = "Running" if ready else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_row(pod: dict) -> list:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    gates = spec.get("readinessGates") or []
    if gates:
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        gate_cell = f"{sum(1 for g in gates if g.get('conditionType') in true)}/{len(gates)}"
    else:
        gate_cell = NONE
    return [_meta(pod).get("name"), f"{ready}/{len(spec.get('containers') or [])}",
            pod_status_reason(pod), restarts, age(_meta(pod).get("creationTimestamp")),
            status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, gate_cell]


def _node_row(node: dict) -> list:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted({k.split("/", 1)[1] for k in (_meta(node).get("labels") or {})
                    if k.startswith("node-role.kubernetes.io/") and "/" in k} |
                   ({(_meta(node).get("labels") or {})["kubernetes.io/role"]}
                    if "kubernetes.io/role" in (_meta(node).get("labels") or {}) else set()))
    addresses = status.get("addresses") or []
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        return next((a.get("address") for a in addresses if a.get("type") == kind), NONE)
    return [_meta(node).get("name"), state, ",".join(r for r in roles if r) or NONE,
            age(_meta(node).get("creationTimestamp")), info.get("kubeletVersion", ""),
            address("InternalIP"), address("ExternalIP"), info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion",
                                                            "<unknown>")]


def _event_row(ev: dict) -> list:
    first = ev.get("firstTimestamp") or ev.get("eventTime") or \
        _meta(ev).get("creationTimestamp")
    last = ev.get("lastTimestamp") or ev.get("eventTime") or first
    count = int(ev.get("count") or 1)
    last_seen = age(last)
    if count > 1:
        last_seen = f"{last_seen} (x{count} over {age(first)})"
    obj = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    src = source.get("component") or ev.get("reportingComponent") or ""
    if source.get("host"):
        src += ", " + source["host"]
    return [last_seen, ev.get("type", ""), ev.get("reason", ""),
            f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}",
            obj.get("fieldPath", ""), src, ev.get("message", ""), age(first), count,
            _meta(ev).get("name")]


def _simple(*cells: Callable[[dict], object]) -> Callable[[dict], list]:
    return lambda o: [_meta(o).get("name")] + [c(o) for c in cells]


def _created(o: dict) -> str:
    return age(_meta(o).get("creationTimestamp"))


def _more(items: list[str], count: int, empty: str) -> str:
    """kube's listWithMoreString: the first 3, then "+ N more..."."""
    text = ",".join(items[:3])
    if count > 3:
        return f"{text} + {count - 3} more..."
    return text or empty


def _service_row(svc: dict) -> list:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    kind = spec.get("type", "")
    external = ",".join(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        external = spec.get("externalName", "")
    elif kind == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") or ""
                   for i in (status.get("loadBalancer") or {}).get("ingress") or []]
        external = ",".join([*(spec.get("externalIPs") or []), *ingress]) if ingress \
            else "<pending>"
    ports = ",".join(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
                     if p.get("nodePort") else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or [])
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [_meta(svc).get("name"), kind, ",".join(spec.get("clusterIPs") or []) or NONE,
            external or NONE, ports or NONE, _created(svc), selector or NONE]


def _endpoints_row(ep: dict) -> list:
    listed: list[str] = []
    count = 0
    for subset in ep.get("subsets") or []:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        for port in ports or [None]:
            for ip in ips:
                host = f"[{ip}]" if ":" in ip else ip
                listed.append(f"{host}:{port.get('port')}" if port else ip)
                count += 1
    cell = _more(listed, count, "") if ep.get("subsets") else NONE
    return [_meta(ep).get("name"), cell, _created(ep)]


def _endpointslice_row(es: dict) -> list:
    ports = [str(p["port"]) if p.get("port") else (p.get("name") or "*")
             for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_meta(es).get("name"), es.get("addressType", ""), _more(ports, len(ports), "<unset>"),
            _more(addresses, len(addresses), "<unset>"), _created(es)]


def _csidriver_row(driver: dict) -> list:
    spec = driver.get("spec") or {}
    audiences = [r.get("audience", "") for r in spec.get("tokenRequests") or []]
    return [_meta(driver).get("name"), bool(spec.get("attachRequired")),
            bool(spec.get("podInfoOnMount")), bool(spec.get("storageCapacity")),
            ",".join(audiences) or "<unset>", bool(spec.get("requiresRepublish")),
            ",".join(spec.get("volumeLifecycleModes") or []) or "<unset>", _created(driver)]


def _storageclass_row(sc: dict) -> list:
    name = _meta(sc).get("name")
    # the annotation kube's IsDefaultAnnotation reads (and its beta form)
    annotations = _meta(sc).get("annotations") or {}
    if "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                  annotations.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy", ""),
            sc.get("volumeBindingMode", ""), bool(sc.get("allowVolumeExpansion")),
            _created(sc)]


TABLES: dict[str, tuple[list[dict], Callable[[dict], list]]] = {
    "pods": ([_NAME, _col("Ready", description="The aggregate readiness state of this pod for "
                          "accepting traffic."),
              _col("Status", description="The aggregate status of the containers in this pod."),
              _col("Restarts", "string", description="The number of times the containers in "
                   "this pod have been restarted."), _AGE,
              _col("IP", priority=1, description="IP address allocated to the pod."),
              _col("Node", priority=1, description="Name of the Node the Pod is assigned to."),
              _col("Nominated Node", priority=1, description="Nominated node name."),
              _col("Readiness Gates", priority=1, description="Pod readiness gates.")],
             _pod_row),
    "nodes": ([_NAME, _col("Status", description="The status of the node"),
               _col("Roles", description="The roles of the node"), _AGE,
               _col("Version", description="Kubelet Version reported by the node."),
               _col("Internal-IP", priority=1), _col("External-IP", priority=1),
               _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
               _col("Container-Runtime", priority=1)], _node_row),
    "namespaces": ([_NAME, _col("Status", description="The status of the namespace"), _AGE],
                   _simple(lambda o: (o.get("status") or {}).get("phase", ""), _created)),
    "events": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
                _col("Subobject", priority=1), _col("Source", priority=1), _col("Message"),
                _col("First Seen", priority=1), _col("Count", "integer", priority=1),
                _col("Name", priority=1)], _event_row),
    "configmaps": ([_NAME, _col("Data", "integer"), _AGE],
                   _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                           _created)),
    "secrets": ([_NAME, _col("Type"), _col("Data", "integer"), _AGE],
                _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}),
                        _created)),
    "serviceaccounts": ([_NAME, _col("Secrets"), _AGE],
                        _simple(lambda o: len(o.get("secrets") or []), _created)),
    "services": ([_NAME, _col("Type", description="The type of the service."),
                  _col("Cluster-IP", description="The cluster IP of the service."),
                  _col("External-IP", description="The external IP of the service."),
                  _col("Port(s)", description="The ports of the service."), _AGE,
                  _col("Selector", priority=1, description="Route service traffic to pods "
                       "with label keys and values matching this selector.")], _service_row),
    "endpoints": ([_NAME, _col("Endpoints", description="Endpoints of the service."), _AGE],
                  _endpoints_row),
    "endpointslices": ([_NAME, _col("AddressType", description="The address type of the "
                                    "endpoint slice."),
                        _col("Ports", description="The ports of the endpoint slice."),
                        _col("Endpoints", description="The endpoints of the endpoint slice."),
                        _AGE], _endpointslice_row),
    "leases": ([_NAME, _col("Holder", description="The holder of the lease"), _AGE],
               _simple(lambda o: (o.get("spec") or {}).get("holderIdentity") or "", _created)),
    "csinodes": ([_NAME, _col("Drivers", "integer", description="Drivers indicates the number "
                              "of CSI drivers registered on the node"), _AGE],
                 _simple(lambda o: len((o.get("spec") or {}).get("drivers") or []), _created)),
    "csidrivers": ([_NAME, _col("AttachRequired", "boolean"),
                    _col("PodInfoOnMount", "boolean"), _col("StorageCapacity", "boolean"),
                    _col("TokenRequests"), _col("RequiresRepublish", "boolean"),
                    _col("Modes"), _AGE], _csidriver_row),
    "storageclasses": ([_NAME, _col("Provisioner"), _col("ReclaimPolicy"),
                        _col("VolumeBindingMode"), _col("AllowVolumeExpansion", "boolean"),
                        _AGE], _storageclass_row),
    "runtimeclasses": ([_NAME, _col("Handler"), _AGE],
                       _simple(lambda o: o.get("handler", ""), _created)),
}


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def to_table(resource: str, objects: list[dict], *, resource_version: str = "",
             continue_token: str = "", include_object: str = "PartialObjectMetadata",
             headers: bool = True) -> dict:
    from .tables_apps import WORKLOAD_TABLES  # they build on this module's helpers
    from .tables_storage import STORAGE_TABLES
    columns, row = TABLES.get(resource) or WORKLOAD_TABLES.get(resource) or \
        STORAGE_TABLES.get(resource) or ([_NAME, _AGE], _simple(_created))
    rows = []
    for obj in objects:
        entry: dict = {"cells": row(obj)}
        included = _row_object(obj, include_object)
        if included is not None:
            entry["object"] = included
        rows.append(entry)
    meta: dict = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    table = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    if headers:
        table["columnDefinitions"] = columns
    return table
