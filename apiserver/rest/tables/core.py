"""Table columns of the core kinds (pods, nodes, services, ...) and of discovery, coordination,
storage and node.k8s.io, as kube's printers.go prints them for `kubectl get`; priority-1
columns appear with -o wide."""
from __future__ import annotations

from typing import Callable

from .columns import AGE, NAME, NONE, age, column, created, meta, simple


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
    if meta(pod).get("deletionTimestamp"):
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
    return [meta(pod).get("name"), f"{ready}/{len(spec.get('containers') or [])}",
            pod_status_reason(pod), restarts, age(meta(pod).get("creationTimestamp")),
            status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, gate_cell]


def _node_row(node: dict) -> list:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted({k.split("/", 1)[1] for k in (meta(node).get("labels") or {})
                    if k.startswith("node-role.kubernetes.io/") and "/" in k} |
                   ({(meta(node).get("labels") or {})["kubernetes.io/role"]}
                    if "kubernetes.io/role" in (meta(node).get("labels") or {}) else set()))
    addresses = status.get("addresses") or []
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        return next((a.get("address") for a in addresses if a.get("type") == kind), NONE)
    return [meta(node).get("name"), state, ",".join(r for r in roles if r) or NONE,
            age(meta(node).get("creationTimestamp")), info.get("kubeletVersion", ""),
            address("InternalIP"), address("ExternalIP"), info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion",
                                                            "<unknown>")]


def _event_row(ev: dict) -> list:
    first = ev.get("firstTimestamp") or ev.get("eventTime") or \
        meta(ev).get("creationTimestamp")
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
            meta(ev).get("name")]


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
    return [meta(svc).get("name"), kind, ",".join(spec.get("clusterIPs") or []) or NONE,
            external or NONE, ports or NONE, created(svc), selector or NONE]


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
    return [meta(ep).get("name"), cell, created(ep)]


def _endpointslice_row(es: dict) -> list:
    ports = [str(p["port"]) if p.get("port") else (p.get("name") or "*")
             for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [meta(es).get("name"), es.get("addressType", ""), _more(ports, len(ports), "<unset>"),
            _more(addresses, len(addresses), "<unset>"), created(es)]


def _csidriver_row(driver: dict) -> list:
    spec = driver.get("spec") or {}
    audiences = [r.get("audience", "") for r in spec.get("tokenRequests") or []]
    return [meta(driver).get("name"), bool(spec.get("attachRequired")),
            bool(spec.get("podInfoOnMount")), bool(spec.get("storageCapacity")),
            ",".join(audiences) or "<unset>", bool(spec.get("requiresRepublish")),
            ",".join(spec.get("volumeLifecycleModes") or []) or "<unset>", created(driver)]


def _storageclass_row(sc: dict) -> list:
    name = meta(sc).get("name")
    # the annotation kube's IsDefaultAnnotation reads (and its beta form)
    annotations = meta(sc).get("annotations") or {}
    if "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                  annotations.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy", ""),
            sc.get("volumeBindingMode", ""), bool(sc.get("allowVolumeExpansion")),
            created(sc)]


CORE_TABLES: dict[str, tuple[list[dict], Callable[[dict], list]]] = {
    "pods": ([NAME, column("Ready", description="The aggregate readiness state of this pod for "
                           "accepting traffic."),
              column("Status", description="The aggregate status of the containers in this pod."),
              column("Restarts", "string", description="The number of times the containers in "
                     "this pod have been restarted."), AGE,
              column("IP", priority=1, description="IP address allocated to the pod."),
              column("Node", priority=1, description="Name of the Node the Pod is assigned to."),
              column("Nominated Node", priority=1, description="Nominated node name."),
              column("Readiness Gates", priority=1, description="Pod readiness gates.")],
             _pod_row),
    "nodes": ([NAME, column("Status", description="The status of the node"),
               column("Roles", description="The roles of the node"), AGE,
               column("Version", description="Kubelet Version reported by the node."),
               column("Internal-IP", priority=1), column("External-IP", priority=1),
               column("OS-Image", priority=1), column("Kernel-Version", priority=1),
               column("Container-Runtime", priority=1)], _node_row),
    "namespaces": ([NAME, column("Status", description="The status of the namespace"), AGE],
                   simple(lambda o: (o.get("status") or {}).get("phase", ""), created)),
    "events": ([column("Last Seen"), column("Type"), column("Reason"), column("Object"),
                column("Subobject", priority=1), column("Source", priority=1), column("Message"),
                column("First Seen", priority=1), column("Count", "integer", priority=1),
                column("Name", priority=1)], _event_row),
    "configmaps": ([NAME, column("Data", "integer"), AGE],
                   simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                          created)),
    "secrets": ([NAME, column("Type"), column("Data", "integer"), AGE],
                simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}),
                       created)),
    "serviceaccounts": ([NAME, column("Secrets"), AGE],
                        simple(lambda o: len(o.get("secrets") or []), created)),
    "services": ([NAME, column("Type", description="The type of the service."),
                  column("Cluster-IP", description="The cluster IP of the service."),
                  column("External-IP", description="The external IP of the service."),
                  column("Port(s)", description="The ports of the service."), AGE,
                  column("Selector", priority=1, description="Route service traffic to pods "
                         "with label keys and values matching this selector.")], _service_row),
    "endpoints": ([NAME, column("Endpoints", description="Endpoints of the service."), AGE],
                  _endpoints_row),
    "endpointslices": ([NAME, column("AddressType", description="The address type of the "
                                     "endpoint slice."),
                        column("Ports", description="The ports of the endpoint slice."),
                        column("Endpoints", description="The endpoints of the endpoint slice."),
                        AGE], _endpointslice_row),
    "leases": ([NAME, column("Holder", description="The holder of the lease"), AGE],
               simple(lambda o: (o.get("spec") or {}).get("holderIdentity") or "", created)),
    "csinodes": ([NAME, column("Drivers", "integer", description="Drivers indicates the number "
                               "of CSI drivers registered on the node"), AGE],
                 simple(lambda o: len((o.get("spec") or {}).get("drivers") or []), created)),
    "csidrivers": ([NAME, column("AttachRequired", "boolean"),
                    column("PodInfoOnMount", "boolean"), column("StorageCapacity", "boolean"),
                    column("TokenRequests"), column("RequiresRepublish", "boolean"),
                    column("Modes"), AGE], _csidriver_row),
    "storageclasses": ([NAME, column("Provisioner"), column("ReclaimPolicy"),
                        column("VolumeBindingMode"), column("AllowVolumeExpansion", "boolean"),
                        AGE], _storageclass_row),
    "runtimeclasses": ([NAME, column("Handler"), AGE],
                       simple(lambda o: o.get("handler", ""), created)),
}
