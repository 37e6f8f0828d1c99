"""The Node: registration, and its status (capacity and allocatable from the machine,
addresses, nodeInfo, the kubelet's endpoint, conditions Ready / MemoryPressure / DiskPressure /
PIDPressure) posted when it changes and at least every nodeStatusReportFrequency (5 min), checked
every nodeStatusUpdateFrequency (10 s), as the kubelet does when Leases carry the heartbeat."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction

from cri.api import ImageService
from kubeapi import timefmt
from kubeapi.quantity import parse_quantity
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from kubelet import KUBELET_VERSION, VERSION, machine
from kubelet.config import KubeletConfig
from kubelet.events import NORMAL, EventRecorder

log = logging.getLogger("kubelet.node")

MAX_IMAGES = 50

_CONDITIONS = {
    # type: (reason when fine, message when fine, reason when not, message when not)
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available",
                       "KubeletHasInsufficientMemory",
                       "kubelet has insufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                     "KubeletHasDiskPressure", "kubelet has disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available",
                    "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}
# The node events the kubelet posts when a condition changes (also on its first status):
# type -> (reason while the condition is "False", reason while "True").
_EVENTS = {"MemoryPressure": ("NodeHasSufficientMemory", "NodeHasInsufficientMemory"),
           "DiskPressure": ("NodeHasNoDiskPressure", "NodeHasDiskPressure"),
           "PIDPressure": ("NodeHasSufficientPID", "NodeHasInsufficientPID"),
           "Ready": ("NodeNotReady", "NodeReady")}


def threshold(value: str, capacity: int) -> int:
    """An eviction threshold ("100Mi", "10%") as an amount."""
    if value.endswith("%"):
        return int(Fraction(value[:-1]) * capacity / 100)
    return int(parse_quantity(value))


def _cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def resources(config: KubeletConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable): allocatable is capacity less the reservations and the hard
    eviction thresholds."""
    cap = machine.capacity(config.root_dir)
    reserved = {"cpu": 0, "memory": 0, "ephemeral-storage": 0, "pid": 0}
    for res in (config.system_reserved, config.kube_reserved):
        for name, value in res.items():
            amount = parse_quantity(value)
            reserved[name] = reserved.get(name, 0) + (int(amount * 1000) if name == "cpu"
                                                      else int(amount))
    hard = config.eviction_hard
    memory_floor = threshold(hard.get("memory.available", "0"), cap.memory)
    storage_floor = threshold(hard.get("nodefs.available", "0"), cap.storage)
    capacity = {"cpu": str(cap.cpus), "memory": f"{cap.memory // 1024}Ki",
                "ephemeral-storage": f"{cap.storage // 1024}Ki",
                "pods": str(config.max_pods), "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    allocatable = dict(capacity)
    allocatable["cpu"] = _cpu(max(cap.cpus * 1000 - reserved["cpu"], 0))
    memory = max(cap.memory - reserved["memory"] - memory_floor, 0)
    allocatable["memory"] = f"{memory // 1024}Ki"
    allocatable["ephemeral-storage"] = str(max(
        cap.storage - reserved["ephemeral-storage"] - storage_floor, 0))
    return capacity, allocatable


class NodeStatus:
    def __init__(self, client: ApiClient, config: KubeletConfig, host_ip: str,
                 kubelet_port: Callable[[], int], network_ready: Callable[[], str],
                 images: ImageService, events: EventRecorder | None = None) -> None:
        """network_ready() returns "" when pods can get a network, else why not."""
        self.client = client
        self.events = events
        self.images = images
        self.config = config
        self.host_ip = host_ip
        self.kubelet_port = kubelet_port
        self.network_ready = network_ready
        self.path = f"/api/v1/nodes/{config.node_name}"
        self.uid = ""
        self.registered = threading.Event()
        self._last: dict | None = None
        self._last_posted = 0.0
        self._info = machine.node_info()

    # -- the status ---------------------------------------------------------------------------

    def resources(self) -> tuple[dict[str, str], dict[str, str]]:
        return resources(self.config)

    def pressure(self) -> dict[str, bool]:
        cap = machine.capacity(self.config.root_dir)
        s = machine.signals(self.config.root_dir)
        hard = self.config.eviction_hard
        return {
            "MemoryPressure": s.memory_available < threshold(
                hard.get("memory.available", "0"), cap.memory),
            "DiskPressure": s.storage_available < threshold(
                hard.get("nodefs.available", "0"), cap.storage) or s.inodes_free < threshold(
                hard.get("nodefs.inodesFree", "0"), cap.storage_inodes),
            "PIDPressure": s.pids_available < threshold(hard.get("pid.available", "0"),
                                                         s.pid_max),
        }

    def status(self) -> dict:
        capacity, allocatable = self.resources()
        conditions = []
        for kind, pressing in self.pressure().items():
            ok_reason, ok_message, bad_reason, bad_message = _CONDITIONS[kind]
            conditions.append({"type": kind, "status": "True" if pressing else "False",
                               "reason": bad_reason if pressing else ok_reason,
                               "message": bad_message if pressing else ok_message})
        why_not = self.network_ready()
        if why_not:
            conditions.append({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                               "message": why_not})
        else:
            conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                               "message": "kubelet is posting ready status"})
        return {
            "capacity": capacity, "allocatable": allocatable, "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.host_ip},
                          {"type": "Hostname", "address": self.config.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port()}},
            "nodeInfo": {**self._info, "containerRuntimeVersion": f"pycontainer://{VERSION}",
                         "kubeletVersion": KUBELET_VERSION},
            "images": self._images(),
        }

    def _images(self) -> list[dict]:
        """The biggest images of the store, as the kubelet lists them (at most 50)."""
        images = sorted(self.images.list_images(), key=lambda i: i.size, reverse=True)
        return [{"names": i.repo_digests + i.repo_tags, "sizeBytes": i.size}
                for i in images[:MAX_IMAGES]]

    # -- registration and updates -------------------------------------------------------------

    def node_object(self) -> dict:
        labels = {"kubernetes.io/hostname": self.config.node_name,
                  "kubernetes.io/os": "linux", "kubernetes.io/arch": machine.architecture(),
                  "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": machine.architecture(),
                  **self.config.node_labels}
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.config.node_name, "labels": labels},
                "spec": {}, "status": self._stamped(self.status(), None)}

    def register(self, stop: threading.Event) -> bool:
        """Creates the Node (or takes over the one of that name; with registerNode false only
        that); retries until it works or stop is set. True once registered."""
        delay = 0.2
        while not stop.is_set():
            try:
                try:
                    if not self.config.register_node:   # someone else made it: take it over
                        raise ApiError(409, "AlreadyExists", "registerNode is false")
                    node = self.client.create("/api/v1/nodes", self.node_object())
                except ApiError as e:
                    if e.code != 409:
                        raise
                    obj = self.node_object()
                    node = self.client.patch(self.path, {"metadata": {"labels":
                                                                      obj["metadata"]["labels"]}})
                    node = self.client.patch(self.path + "/status", {"status": obj["status"]})
                self.uid = node["metadata"]["uid"]
                self.registered.set()
                self._record_transitions(None, node.get("status"))
                self._last = node.get("status")
                self._last_posted = time.monotonic()
                log.info("registered node %s", self.config.node_name)
                return True
            except ApiError as e:
                log.warning("node registration failed, will retry: %s", e)
            stop.wait(delay)
            delay = min(delay * 2, 7.0)
        return False

    def _stamped(self, status: dict, previous: dict | None) -> dict:
        """Heartbeat times now; transition times kept where a condition did not change."""
        before = {c["type"]: c for c in (previous or {}).get("conditions") or []}
        now = timefmt.rfc3339()
        for c in status["conditions"]:
            c["lastHeartbeatTime"] = now
            old = before.get(c["type"])
            c["lastTransitionTime"] = old["lastTransitionTime"] if old and \
                old.get("status") == c["status"] and old.get("lastTransitionTime") else now
        return status

    def update_once(self, force: bool = False) -> None:
        status = self.status()
        changed = self._last is None or _comparable(status) != _comparable(self._last)
        due = time.monotonic() - self._last_posted >= self.config.node_status_report_frequency
        if not (changed or due or force):
            return
        status = self._stamped(status, self._last)
        self.client.patch(self.path + "/status", {"status": status})
        self._record_transitions(self._last, status)
        self._last = status
        self._last_posted = time.monotonic()

    def _record_transitions(self, before: dict | None, after: dict | None) -> None:
        """An event per condition whose status the post changed (all of them at first)."""
        if self.events is None:
            return
        old = {c["type"]: c.get("status") for c in (before or {}).get("conditions") or []}
        for c in (after or {}).get("conditions") or []:
            reasons = _EVENTS.get(c["type"])
            if reasons is None or old.get(c["type"]) == c.get("status"):
                continue
            reason = reasons[c.get("status") == "True"]
            self.events.node(NORMAL, reason,
                             f"Node {self.config.node_name} status is now: {reason}")

    def run(self, stop: threading.Event) -> None:
        if self.events is not None:
            # once per start, as the kubelet's Run and its container manager (whose pod
            # cgroups, sized from allocatable, exist by the time the node registers)
            self.events.node(NORMAL, "Starting", "Starting kubelet.")
            self.events.node(NORMAL, "NodeAllocatableEnforced",
                             "Updated Node Allocatable limit across pods")
        if not self.register(stop):
            return
        while not stop.wait(self.config.node_status_update_frequency):
            try:
                self.update_once()
            except ApiError as e:
                log.warning("node status update failed: %s", e)


def _comparable(status: dict) -> dict:
    conditions = [{k: v for k, v in c.items() if k not in ("lastHeartbeatTime",
                                                          "lastTransitionTime")}
                  for c in status.get("conditions") or []]
    return {**{k: v for k, v in status.items() if k in ("capacity", "allocatable",
                                                         "addresses", "daemonEndpoints",
                                                         "nodeInfo", "images")},
            "conditions": conditions}
