"""The DaemonSet controller, as kube's pkg/controller/daemon: one pod per node the DaemonSet
should run on (nodeSelector, required node affinity, taints against its tolerations plus the
ones kube adds to every daemon pod), bound by a required node affinity on the node's
metadata.name for the scheduler to honour; extra, failed and misplaced pods are deleted.
RollingUpdate replaces pods of older revisions at most maxUnavailable at a time (unavailable
old pods first), OnDelete only when a pod is deleted. The template's history is kept in
ControllerRevisions, pods carry controller-revision-hash and pod-template-generation."""
from __future__ import annotations

import copy
import logging
import math

from kubeapi import label_selector
from kubeapi.node_affinity import node_affinity_matches
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..nodes.taints import tolerates
from ..workers import start_workers
from .controller_ref import Claimer, owner_reference, resolve
from .expectations import Expectations
from .pod_control import PodControl
from .history import REVISION_HASH, History
from .pod_util import controller_ref, is_available, is_ready, pods_path
from .replicaset import OWNER_INDEX, pod_controller_uid
from .workload_status import put_status

log = logging.getLogger("daemonset-controller")

TEMPLATE_GENERATION = "pod-template-generation"
WORKERS = 2
# The tolerations every daemon pod gets (kube's AddOrUpdateDaemonPodTolerations), so that a
# node's conditions do not evict or keep out its daemons.
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def ds_path(ns: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{ns}/daemonsets"
    return f"{base}/{name}" if name else base


def daemon_tolerations(spec: dict) -> list[dict]:
    """The template's tolerations with kube's daemon tolerations added (not duplicated)."""
    tolerations = list(spec.get("tolerations") or [])
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    for key, effect in wanted:
        toleration = {"key": key, "operator": "Exists", "effect": effect}
        if toleration not in tolerations:
            tolerations.append(toleration)
    return tolerations


def should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """kube's NodeShouldRunDaemonPod: (should run a new pod, should keep a running one)."""
    spec = (ds["spec"].get("template") or {}).get("spec") or {}
    if spec.get("nodeName") and spec["nodeName"] != node["metadata"]["name"]:
        return False, False
    if not node_affinity_matches(spec, node):
        return False, False
    tolerations = daemon_tolerations(spec)
    run = keep = True
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            run = False
            if taint.get("effect") == "NoExecute":
                keep = False
    return run, keep


def affinity_node(pod: dict) -> str:
    """The node a daemon pod is meant for: spec.nodeName, or its metadata.name affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and \
                    len(req.get("values") or []) == 1:
                return req["values"][0]
    return ""


def pod_for_node(ds: dict, node_name: str, revision_hash: str) -> dict:
    """The daemon pod of one node: the template, the revision labels, the daemon
    tolerations, and a required node affinity on the node's name only (kube's
    ReplaceDaemonSetPodNodeNameNodeAffinity: the label terms were checked already)."""
    template = copy.deepcopy(ds["spec"].get("template") or {})
    tmeta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_HASH] = revision_hash
    labels[TEMPLATE_GENERATION] = str(ds["metadata"].get("generation", 1))
    meta: dict = {"generateName": f"{ds['metadata']['name']}-", "labels": labels,
                  "ownerReferences": [owner_reference(ds)]}
    for field in ("annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = tmeta[field]
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    spec["tolerations"] = daemon_tolerations(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _scaled(value: object, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent, rounding up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)  # type: ignore[call-overload]


def surge_and_unavailable(ds: dict, desired: int) -> tuple[int, int]:
    """maxSurge and maxUnavailable as numbers of nodes; both 0 means 1 unavailable."""
    rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", 0), desired)
    unavailable = _scaled(rolling.get("maxUnavailable", 1), desired)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _hash(pod: dict) -> str:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH, "")


def _rolling(ds: dict) -> bool:
    return (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") == \
        "RollingUpdate"


class DaemonSetController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.dss = ctx.informers.informer(resource_path("apps", "v1", "daemonsets"))
        self.nodes = ctx.informers.informer(resource_path("", "v1", "nodes"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(OWNER_INDEX, pod_controller_uid)
        revisions = ctx.informers.informer(resource_path("apps", "v1", "controllerrevisions"))
        self.history = History(ctx.client, revisions)
        self.queue = RateLimitingQueue(name="daemonset")
        self.expectations = Expectations()
        self.recorder = EventRecorder(ctx.client, "daemonset-controller")
        self.control = PodControl(ctx.client, self.recorder, self.expectations)
        self.dss.add_event_handler(on_add=self._enqueue,
                                   on_update=lambda old, new: self._enqueue(new),
                                   on_delete=self._ds_deleted)
        self.nodes.add_event_handler(on_add=lambda n: self._enqueue_all(),
                                     on_update=self._node_updated,
                                     on_delete=lambda n: self._enqueue_all())
        self.pods.add_event_handler(on_add=lambda p: self._pod_event(p),
                                    on_update=lambda old, new: self._pod_updated(old, new),
                                    on_delete=lambda item: self._pod_event(object_of(item), True))

    def start(self) -> None:
        start_workers(self.ctx, "daemonset", self.queue, self.sync,
                      [self.dss, self.nodes, self.pods, self.history.revisions], WORKERS, log)

    # events

    def _enqueue(self, ds: dict) -> None:
        self.queue.add(object_key(ds))

    def _enqueue_all(self) -> None:
        for ds in self.dss.store.list():
            self._enqueue(ds)

    def _ds_deleted(self, item: object) -> None:
        key = object_key(object_of(item))
        self.expectations.forget(key)
        self.queue.add(key)

    def _node_updated(self, old: dict, new: dict) -> None:
        if old.get("spec") != new.get("spec") or \
                old["metadata"].get("labels") != new["metadata"].get("labels"):
            self._enqueue_all()

    def _owner(self, pod: dict) -> dict | None:
        return resolve(self.dss.store, pod["metadata"].get("namespace", ""), controller_ref(pod),
                       "DaemonSet")

    def _pod_event(self, pod: dict, deleted: bool = False) -> None:
        ds = self._owner(pod)
        if ds is None:
            if not deleted and controller_ref(pod) is None:
                labels = pod["metadata"].get("labels") or {}
                for other in self.dss.store.by_index(NAMESPACE_INDEX,
                                                     pod["metadata"].get("namespace", "")):
                    if label_selector.matches(other["spec"].get("selector"), labels):
                        self._enqueue(other)
            return
        key = object_key(ds)
        self.expectations.pod_observed(key, pod, deleted)
        self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if new["metadata"].get("deletionTimestamp") and \
                not old["metadata"].get("deletionTimestamp"):
            self._pod_event(new, True)
            return
        for pod in (old, new):
            ds = self._owner(pod)
            if ds is not None:
                self._enqueue(ds)
                min_ready = ds["spec"].get("minReadySeconds") or 0
                if min_ready and not is_ready(old) and is_ready(new):
                    self.queue.add_after(object_key(ds), min_ready + 1)

    # sync

    def sync(self, key: str) -> None:
        cached = self.dss.store.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", **copy.deepcopy(cached)}
        ns = ds["metadata"]["namespace"]
        if ds["metadata"].get("deletionTimestamp"):
            return
        if label_selector.is_empty(ds["spec"].get("selector")):
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector "
                                "is required.")
            return
        owned = self.history.owned(ds)
        current, owned = self.history.current(ds, owned)
        digest = current["metadata"]["labels"][REVISION_HASH]
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                if (controller_ref(p) or {}).get("uid") == ds["metadata"]["uid"] or
                label_selector.matches(ds["spec"].get("selector"), p["metadata"].get("labels"))]
        pods = Claimer(self.client, ds, lambda p: pods_path(ns, p["metadata"]["name"]),
                       ds_path(ns, ds["metadata"]["name"])).claim(pods)
        by_node: dict[str, list[dict]] = {}
        for pod in pods:
            by_node.setdefault(affinity_node(pod), []).append(pod)
        nodes = self.nodes.store.list()
        if self.expectations.satisfied(key):
            self._manage(key, ds, nodes, by_node, digest)
            if _rolling(ds):
                self._rolling_update(key, ds, nodes, by_node, digest)
        live = {f"{ds['metadata']['name']}-{(p['metadata'].get('labels') or {}).get(REVISION_HASH)}"
                for p in pods} | {current["metadata"]["name"]}
        self.history.truncate(ds, owned, live)
        self._write_status(ds, nodes, by_node, digest)

    def _manage(self, key: str, ds: dict, nodes: list[dict], by_node: dict[str, list[dict]],
                digest: str) -> None:
        create: list[str] = []
        delete: list[dict] = []
        surging = _rolling(ds) and surge_and_unavailable(ds, len(nodes))[0] > 0
        for node in nodes:
            name = node["metadata"]["name"]
            run, keep = should_run(ds, node)
            pods = [p for p in by_node.get(name, []) if not p["metadata"].get("deletionTimestamp")]
            if run and not pods:
                create.append(name)
            elif keep:
                failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
                delete += failed
                running = sorted((p for p in pods if p not in failed),
                                 key=lambda p: p["metadata"].get("creationTimestamp", ""))
                if surging:
                    # a surge keeps the oldest pod of each revision kind on the node
                    fresh = [p for p in running if _hash(p) == digest]
                    delete += fresh[1:] + [p for p in running if _hash(p) != digest][1:]
                else:
                    delete += running[1:]
            else:
                delete += pods
        known = {n["metadata"]["name"] for n in nodes}
        for name, pods in by_node.items():
            if name not in known and name:
                delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        self.control.delete_all(key, ds, delete)
        self._create_on(key, ds, create, digest)

    def _create_on(self, key: str, ds: dict, create: list[str], digest: str) -> None:
        if not create:
            return
        self.expectations.expect_creations(key, len(create))
        for name in create:
            self.control.create(key, ds, pod_for_node(ds, name, digest))

    def _rolling_update(self, key: str, ds: dict, nodes: list[dict],
                        by_node: dict[str, list[dict]], digest: str) -> None:
        """kube's rollingUpdate: without surge, delete old pods (unavailable ones first, then
        at most maxUnavailable less what is unavailable) for _manage to replace; with surge,
        start a new pod beside an old one (at once where the old is unavailable, else within
        maxSurge) and delete the old once the new is available."""
        min_ready = ds["spec"].get("minReadySeconds") or 0
        wanted = [n["metadata"]["name"] for n in nodes if should_run(ds, n)[0]]
        surge, budget = surge_and_unavailable(ds, len(wanted))
        unavailable = 0
        old_available: list[dict] = []
        old_unavailable: list[dict] = []
        replace_now: list[str] = []
        candidates: list[str] = []
        surging = 0
        victims: list[dict] = []
        for name in wanted:
            pods = [p for p in by_node.get(name, []) if not p["metadata"].get("deletionTimestamp")]
            if not pods or not any(is_available(p, min_ready) for p in pods):
                unavailable += 1
            old = [p for p in pods if _hash(p) != digest]
            fresh = [p for p in pods if _hash(p) == digest]
            if not surge:
                for pod in old:
                    (old_available if is_available(pod, min_ready) else old_unavailable) \
                        .append(pod)
                continue
            if not old:
                continue
            if not fresh:
                if any(not is_available(p, min_ready) for p in old):
                    replace_now.append(name)
                else:
                    candidates.append(name)
            elif any(is_available(p, min_ready) for p in fresh):
                victims += old
            else:
                surging += 1
        if surge:
            self.control.delete_all(key, ds, victims)
            self._create_on(key, ds, replace_now + candidates[:max(surge - surging, 0)],
                            digest)
            return
        victims = old_unavailable + old_available[:max(budget - unavailable, 0)]
        self.control.delete_all(key, ds, victims)

    def _write_status(self, ds: dict, nodes: list[dict], by_node: dict[str, list[dict]],
                      digest: str) -> None:
        min_ready = ds["spec"].get("minReadySeconds") or 0
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            run, keep = should_run(ds, node)
            pods = [p for p in by_node.get(node["metadata"]["name"], [])
                    if not p["metadata"].get("deletionTimestamp")]
            if run:
                desired += 1
            if not pods:
                continue
            if not keep:
                misscheduled += 1
                continue
            current += 1
            pod = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))[0]
            if is_ready(pod):
                ready += 1
                if is_available(pod, min_ready):
                    available += 1
            if any(_hash(p) == digest for p in pods):
                updated += 1
        status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": ds["metadata"].get("generation", 0),
                  "updatedNumberScheduled": updated, "numberAvailable": available,
                  "numberUnavailable": max(desired - available, 0)}
        for field in ("observedGeneration", "updatedNumberScheduled", "numberAvailable",
                      "numberUnavailable"):
            if not status[field]:
                del status[field]
        old = ds.get("status") or {}
        if old.get("collisionCount"):
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        put_status(self.client, ds_path(ds["metadata"]["namespace"], ds["metadata"]["name"]),
                   ds, status)
        if min_ready and ready != available:
            self.queue.add_after(object_key(ds), min_ready)


def start(ctx: ControllerContext) -> None:
    DaemonSetController(ctx).start()
