"""The scheduler's view of the cluster, as kube-scheduler's internal cache: per node what fit
needs (allocatable, the taints it filters on, labels) and what its pods request, kept
incrementally from the watch (pods bound elsewhere, terminated or deleted), plus the pods the
scheduler assumed on a node between its decision and the binding being seen, so that the next
pod sees the room taken. Touched by the scheduling thread only."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .quantities import integer_quantity, pod_requests

NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
_FILTERED_EFFECTS = ("NoSchedule", "NoExecute")


class Taint(NamedTuple):
    key: str
    value: str
    effect: str


@dataclass
class NodeInfo:
    name: str
    node: dict | None = None       # None: pods are bound to a node the cache has not seen
    allocatable: dict[str, int] = field(default_factory=dict)
    max_pods: int | None = None
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    labels: dict = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    pod_count: int = 0
    shape: tuple = ()

    def fit_shape(self) -> tuple:
        return (self.allocatable, self.max_pods, self.taints, self.unschedulable, self.labels)


@dataclass
class _PodEntry:
    node: str
    requests: dict[str, int]
    assumed: bool


def _ready_status(node: dict) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") or "Unknown"
    return "False"


def raw_shape(node: dict) -> tuple:
    """What filters read of the Node, as stored: a status patch that leaves it equal (a
    heartbeat) is told apart by comparing it, nothing parsed."""
    spec = node.get("spec") or {}
    return ((node.get("status") or {}).get("allocatable"), spec.get("taints"),
            spec.get("unschedulable"), node["metadata"].get("labels"), _ready_status(node))


def filter_taints(node: dict) -> tuple[Taint, ...]:
    """The node's NoSchedule and NoExecute taints, and the NoSchedule taint its Ready condition
    stands for (not-ready, unreachable) when the node lifecycle controller has not put it there
    yet, or does not run (pyapiserver without --controllers): kube-scheduler reads taints only,
    and kube-apiserver taints every new Node not-ready until the controller sees it Ready."""
    taints = tuple(Taint(t.get("key") or "", t.get("value") or "", t.get("effect") or "")
                   for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in _FILTERED_EFFECTS)
    ready = _ready_status(node)
    implied = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready)
    if implied and not any(t.key == implied for t in taints):
        taints += (Taint(implied, "", "NoSchedule"),)
    return taints


def node_info(node: dict) -> NodeInfo:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    amounts = {name: integer_quantity(name, value) for name, value in allocatable.items()}
    return NodeInfo(node["metadata"]["name"], node, amounts, amounts.get("pods"),
                    filter_taints(node), bool((node.get("spec") or {}).get("unschedulable")),
                    node["metadata"].get("labels") or {}, shape=raw_shape(node))


def _looser(old: NodeInfo, new: NodeInfo) -> bool:
    """Could a pod that did not fit before fit now: more of some resource, a taint or the
    unschedulable mark lifted, other labels."""
    return any(v > old.allocatable.get(k, 0) for k, v in new.allocatable.items()) or \
        (new.max_pods or 0) > (old.max_pods or 0) or \
        bool(set(old.taints) - set(new.taints)) or \
        (old.unschedulable and not new.unschedulable) or old.labels != new.labels


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodEntry] = {}
        self._order: list[NodeInfo] | None = None   # the real nodes, rebuilt when they change

    def schedulable_nodes(self) -> list[NodeInfo]:
        if self._order is None:
            self._order = [n for n in self.nodes.values() if n.node is not None]
        return self._order

    def set_node(self, node: dict) -> bool:
        """Adds or updates a Node; True when pods parked as unschedulable could fit now."""
        old = self.nodes.get(node["metadata"]["name"])
        if old is not None and old.node is not None and old.shape == raw_shape(node):
            old.node = node    # a heartbeat: nothing a filter reads has changed
            return False
        new = node_info(node)
        if old is not None and old.node is not None and old.fit_shape() == new.fit_shape():
            old.node, old.shape = node, new.shape    # equal once parsed ("1" and "1000m")
            return False
        if old is not None:
            new.requested, new.pod_count = old.requested, old.pod_count
        self.nodes[new.name] = new
        self._order = None
        return old is None or old.node is None or _looser(old, new)

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        self._order = None
        if info.pod_count:
            info.node = None    # its pods still count until they are deleted, as kube's
        else:
            del self.nodes[name]

    def is_assumed(self, uid: str) -> bool:
        entry = self._pods.get(uid)
        return entry is not None and entry.assumed

    def has_pod(self, uid: str) -> bool:
        return uid in self._pods

    def assume(self, uid: str, requests: dict[str, int], node: str) -> None:
        self._add(uid, _PodEntry(node, requests, True))

    def forget(self, uid: str) -> None:
        """A binding that failed: the room it took is free again."""
        if self.is_assumed(uid):
            self.remove_pod(uid)

    def bound(self, uid: str, node: str, pod: dict) -> None:
        """A pod seen bound (and not terminated): its assumption confirmed, or counted."""
        entry = self._pods.get(uid)
        if entry is not None and entry.node == node:
            entry.assumed = False
            return
        if entry is not None:
            self.remove_pod(uid)
        self._add(uid, _PodEntry(node, pod_requests(pod), False))

    def remove_pod(self, uid: str) -> bool:
        """A pod deleted or terminated; True when it held room on a node."""
        entry = self._pods.pop(uid, None)
        if entry is None:
            return False
        info = self.nodes[entry.node]
        info.pod_count -= 1
        for name, q in entry.requests.items():
            info.requested[name] -= q
        if info.node is None and not info.pod_count:
            del self.nodes[entry.node]
        return True

    def _add(self, uid: str, entry: _PodEntry) -> None:
        self._pods[uid] = entry
        info = self.nodes.get(entry.node)
        if info is None:
            info = self.nodes[entry.node] = NodeInfo(entry.node)
        info.pod_count += 1
        for name, q in entry.requests.items():
            info.requested[name] = info.requested.get(name, 0) + q
