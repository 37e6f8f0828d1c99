"""The pod's API status from its runtime state (the kubelet's generateAPIPodStatus): phase,
conditions, IPs, QoS class, and the init, app and ephemeral container statuses with their
state, last state, restart count, readiness and the reason a container waits."""
from __future__ import annotations

import time
from collections.abc import Callable

from cri.api import CONTAINER_CREATED, CONTAINER_EXITED, CONTAINER_RUNNING, ContainerStatus
from kubeapi import timefmt
from kubelet import labels
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import TERMINAL_PHASES, Pod
from kubelet.sync.pod_actions import should_restart

KUBELET_CONDITIONS = ("PodScheduled", "PodReadyToStartContainers", "Initialized", "Ready",
                      "ContainersReady")
CONTAINER_ID_PREFIX = "pycontainer://"

# (pod, API container status) -> ready, or started: the probes decide (kubelet.probes)
ReadyFn = Callable[[Pod, dict], bool]
DEADLINE_EXCEEDED = ("DeadlineExceeded",
                     "Pod was active on the node longer than the specified deadline")


def running_is_ready(pod: Pod, status: dict) -> bool:
    return "running" in status["state"]


def generate(pod: Pod, runtime: PodRuntime, old: dict, reasons: dict[str, tuple[str, str]],
             host_ip: str, terminal: bool, ready: ReadyFn = running_is_ready,
             started: ReadyFn = running_is_ready) -> dict:
    """old: the status last generated (or the API's); reasons: container name -> (reason,
    message) of its last failed start."""
    api = pod.status
    has_init = bool(pod.init_containers)
    status: dict = {}
    ips = [host_ip] if pod.host_network else runtime.ips
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    try:
        status["qosClass"] = pod.qos_class
    except (ValueError, TypeError):
        status["qosClass"] = api.get("qosClass", "BestEffort")
    status["containerStatuses"] = _container_statuses(
        pod, runtime, old.get("containerStatuses") or [], pod.containers, has_init,
        False, reasons, ready, started)
    if has_init:
        status["initContainerStatuses"] = _container_statuses(
            pod, runtime, old.get("initContainerStatuses") or [], pod.init_containers,
            True, True, reasons, ready, started)
    if pod.ephemeral_containers:
        status["ephemeralContainerStatuses"] = _ephemeral_statuses(
            pod, runtime, old.get("ephemeralContainerStatuses") or [], has_init, reasons)
    every = status["containerStatuses"] + status.get("initContainerStatuses", [])
    phase = get_phase(pod, every, terminal)
    if phase not in TERMINAL_PHASES:
        if old.get("phase") in TERMINAL_PHASES:
            phase = old["phase"]
        elif api.get("phase") in TERMINAL_PHASES:
            phase = api["phase"]
    if api.get("phase") in TERMINAL_PHASES:
        phase = api["phase"]  # no way out of a terminal phase
    start_time = old.get("startTime") or api.get("startTime") or timefmt.rfc3339()
    if phase not in TERMINAL_PHASES and past_active_deadline(pod, start_time) <= 0:
        phase = "Failed"
        status["reason"], status["message"] = DEADLINE_EXCEEDED
    status["phase"] = phase
    if phase == old.get("phase"):
        for key in ("reason", "message"):
            value = old.get(key) or api.get(key)
            if value and key not in status:
                status[key] = value
    conditions = [c for c in api.get("conditions") or [] if c.get("type") not in
                  KUBELET_CONDITIONS]
    conditions.append({"type": "PodReadyToStartContainers",
                       "status": "True" if runtime.ready_sandbox() else "False"})
    conditions.append(_initialized(pod, every, phase))
    containers_ready = _containers_ready(pod, status["containerStatuses"], phase)
    conditions.append(dict(containers_ready, type="Ready"))
    conditions.append(containers_ready)
    conditions.append({"type": "PodScheduled", "status": "True"})
    status["conditions"] = _with_transition_times(conditions, old.get("conditions") or
                                                  api.get("conditions") or [])
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    status["startTime"] = start_time
    return status


def past_active_deadline(pod: Pod, start_time: str) -> float:
    """Seconds left before spec.activeDeadlineSeconds ends the pod (inf without one)."""
    deadline = pod.active_deadline_seconds
    if not deadline:
        return float("inf")
    return timefmt.parse(start_time) + int(deadline) - time.time()


def _with_transition_times(conditions: list[dict], old: list[dict]) -> list[dict]:
    before = {c.get("type"): c for c in old}
    now = timefmt.rfc3339()
    out = []
    for c in conditions:
        prev = before.get(c["type"])
        c = dict(c)
        c.setdefault("lastProbeTime", None)
        if prev is not None and prev.get("status") == c["status"] and \
                prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        else:
            c.setdefault("lastTransitionTime", now)
        out.append(c)
    return out


def _initialized(pod: Pod, statuses: list[dict], phase: str) -> dict:
    names = {s["name"]: s for s in statuses}
    unknown, incomplete = [], []
    for c in pod.init_containers:
        s = names.get(c["name"])
        if s is None:
            unknown.append(c["name"])
        elif not s.get("ready"):
            incomplete.append(c["name"])
    if phase == "Succeeded" and not unknown:
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if any(_ever_started(names.get(c["name"])) for c in pod.containers):
        return {"type": "Initialized", "status": "True"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: [{' '.join(unknown)}]")
    if incomplete:
        messages.append(f"containers with incomplete status: [{' '.join(incomplete)}]")
    if messages:
        return {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                "message": ", ".join(messages)}
    return {"type": "Initialized", "status": "True"}


def _ever_started(status: dict | None) -> bool:
    if status is None:
        return False
    state = status["state"]
    return "running" in state or "terminated" in state or \
        "terminated" in (status.get("lastState") or {})


def _containers_ready(pod: Pod, statuses: list[dict], phase: str) -> dict:
    if phase in TERMINAL_PHASES:
        return {"type": "ContainersReady", "status": "False",
                "reason": "PodCompleted" if phase == "Succeeded" else "PodFailed"}
    names = {s["name"]: s for s in statuses}
    unknown = [c["name"] for c in pod.containers if c["name"] not in names]
    unready = [c["name"] for c in pod.containers
               if c["name"] in names and not names[c["name"]].get("ready")]
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: [{' '.join(unknown)}]")
    if unready:
        messages.append(f"containers with unready status: [{' '.join(unready)}]")
    if messages:
        return {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                "message": ", ".join(messages)}
    return {"type": "ContainersReady", "status": "True"}


def get_phase(pod: Pod, statuses: list[dict], terminal: bool) -> str:
    names = {s["name"]: s for s in statuses}
    policy = pod.restart_policy
    pending_init = failed_init = 0
    for c in pod.init_containers:
        s = names.get(c["name"])
        state = s["state"] if s else {}
        if s is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif "terminated" in (s.get("lastState") or {}):
            failed_init += s["lastState"]["terminated"].get("exitCode", 0) != 0
        else:
            pending_init += 1
    unknown = running = waiting = stopped = succeeded = 0
    for c in pod.containers:
        s = names.get(c["name"])
        if s is None:
            unknown += 1
            continue
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif "terminated" in (s.get("lastState") or {}):
            stopped += 1
        else:
            waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    if (pending_init and not running and not stopped) or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _container_statuses(pod: Pod, runtime: PodRuntime, previous: list[dict],
                        containers: list[dict], has_init: bool, init: bool,
                        reasons: dict[str, tuple[str, str]], ready: ReadyFn,
                        started: ReadyFn) -> list[dict]:
    old = {s["name"]: s for s in previous}
    default_reason = "PodInitializing" if has_init else "ContainerCreating"
    statuses: dict[str, dict] = {}
    for c in containers:
        s = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
             "state": {"waiting": {"reason": default_reason}}, "lastState": {},
             "ready": False, "restartCount": 0, "started": False}
        prev = old.get(c["name"])
        if prev is not None:
            if "terminated" in (prev.get("state") or {}):
                s = dict(prev)
            else:
                s["restartCount"] = prev.get("restartCount", 0)
                s["lastState"] = prev.get("lastState") or {}
        statuses[c["name"]] = s
    for c in containers:
        if runtime.latest(c["name"]) is not None:
            continue
        prev = old.get(c["name"])
        s = statuses[c["name"]]
        # It ran, and the runtime lost it: say it ended rather than fall back to Pending.
        if prev is not None and "running" in (prev.get("state") or {}) and \
                "waiting" in s["state"] and "terminated" not in s["lastState"]:
            s["lastState"] = {"terminated": {
                "exitCode": 137, "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was deleted.  "
                           "The container used to be Running"}}
            if not pod.is_deleted:
                s["restartCount"] = s.get("restartCount", 0) + 1
    seen: dict[str, int] = {}
    for cs in runtime.containers:           # newest first
        name = cs.metadata.name
        if name not in statuses or seen.get(name, 0) >= 2:
            continue
        converted = _convert(cs)
        if seen.get(name, 0) == 0:
            converted["lastState"] = {}
            statuses[name] = converted
        else:
            statuses[name]["lastState"] = converted["state"]
        seen[name] = seen.get(name, 0) + 1
    for c in containers:
        latest = runtime.latest(c["name"])
        if init and latest is not None and latest.state == CONTAINER_EXITED and \
                latest.exit_code == 0:
            continue
        if not should_restart(c, pod, runtime) or c["name"] not in reasons:
            continue
        s = statuses[c["name"]]
        if "terminated" in s["state"]:
            s["lastState"] = s["state"]
        reason, message = reasons[c["name"]]
        s["state"] = {"waiting": {"reason": reason, "message": message}}
    for s in statuses.values():
        state = s["state"]
        if init:
            s["ready"] = "terminated" in state and state["terminated"].get("exitCode") == 0
        else:
            s["ready"] = ready(pod, s)
        s["started"] = "running" in state and (init or started(pod, s))
    if init:
        return [statuses[c["name"]] for c in containers]
    return [statuses[name] for name in sorted(statuses)]


def _ephemeral_statuses(pod: Pod, runtime: PodRuntime, previous: list[dict], has_init: bool,
                        reasons: dict[str, tuple[str, str]]) -> list[dict]:
    """Built as the init containers' are (in spec order, a failed start shown as waiting),
    but never ready and without `started`: no prober looks at ephemeral containers."""
    statuses = _container_statuses(pod, runtime, previous, pod.ephemeral_containers,
                                   has_init, True, reasons, running_is_ready, running_is_ready)
    for s in statuses:
        s["ready"] = False
        s.pop("started", None)
    return statuses


def _convert(cs: ContainerStatus) -> dict:
    cid = CONTAINER_ID_PREFIX + cs.id
    status = {"name": cs.metadata.name, "image": cs.image, "imageID": cs.image_ref,
              "containerID": cid, "restartCount": labels.restart_count(cs.annotations),
              "ready": False, "started": False, "lastState": {}}
    if cs.state == CONTAINER_RUNNING:
        status["state"] = {"running": {"startedAt": timefmt.rfc3339_ns(cs.started_at)}}
    elif cs.state == CONTAINER_EXITED:
        terminated = {"exitCode": cs.exit_code, "reason": cs.reason,
                      "startedAt": timefmt.rfc3339_ns(cs.started_at or cs.created_at),
                      "finishedAt": timefmt.rfc3339_ns(cs.finished_at or cs.created_at),
                      "containerID": cid}
        if cs.message:
            terminated["message"] = cs.message
        status["state"] = {"terminated": terminated}
    elif cs.state == CONTAINER_CREATED:
        status["state"] = {"waiting": {}}
    else:
        status["state"] = {"waiting": {}}
    return status
