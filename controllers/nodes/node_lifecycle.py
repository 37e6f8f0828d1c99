"""The node lifecycle controller, as kube's: a node whose kubelet stopped renewing its Lease
(kube-node-lease/<node>) and posting status for --node-monitor-grace-period gets its Ready (and
pressure) conditions set to Unknown, "Kubelet stopped posting node status."; a node's Ready
status decides its condition taints: Unknown gives node.kubernetes.io/unreachable, False
node.kubernetes.io/not-ready (NoSchedule and NoExecute), True neither. The taint eviction
controller then deletes the pods that do not tolerate the NoExecute taint long enough.

Heartbeats are measured on our own clock: the last time we saw the Lease's renewTime or the
Ready condition's lastHeartbeatTime change (never comparing the kubelet's clock with ours), so
a node first seen counts as heard of now. A node that never posted a Ready condition gets
--node-startup-grace-period instead of the monitor grace period.

NoExecute taints follow the disruption zones' states (zones): with every node down
none are added and those present are removed (master disruption mode), as kube's; they are
added at most --node-eviction-rate nodes per second per zone.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass

from kubeapi import timefmt
from kubeapi.informer import resource_path
from kubeapi.status import ApiError

from .. import indexes
from ..context import ControllerContext
from ..events import EventRecorder
from . import taints, zones

log = logging.getLogger("node-lifecycle-controller")

LEASE_NAMESPACE = "kube-node-lease"
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass
class _Health:
    probe: float              # monotonic time we last heard of the node
    heartbeat: str            # Ready's lastHeartbeatTime as last seen
    renew: str                # the Lease's renewTime as last seen


class NodeLifecycleController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.informer(resource_path("", "v1", "nodes"))
        self.leases = ctx.informers.informer(
            resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(indexes.POD_NODE, indexes.pod_node)
        self.recorder = EventRecorder(ctx.client, "node-controller")
        self._health: dict[str, _Health] = {}
        self._last_ready: dict[str, str | None] = {}   # Ready's status at the last check
        self._zone_states: dict[str, str] = {}
        self._tainters: dict[str, zones.TokenBucket] = {}   # zone -> NoExecute tainting rate

    def start(self) -> None:
        threading.Thread(target=self._run, name="node-lifecycle", daemon=True).start()

    def _run(self) -> None:
        if not self.ctx.wait_for_sync(self.nodes, self.leases, self.pods):
            return
        log.info("Starting node lifecycle monitor")
        while True:
            self.monitor()
            if self.ctx.stop.wait(self.ctx.options.node_monitor_period):
                return

    def monitor(self) -> None:
        """One pass: each node's health (conditions Unknown when its heartbeats stopped),
        then the zones' states, then each node's taints."""
        checked: list[tuple[dict, str | None, bool]] = []
        nodes = self.nodes.store.list()
        for node in nodes:
            try:
                checked.append((node, *self._check(node)))
            except ApiError as e:
                # Retried at the next period, with a fresh copy from the cache.
                log.warning("node %s: %s", node["metadata"]["name"], e.message)
        seen = {node["metadata"]["name"] for node in nodes}
        for name in list(self._health):
            if name not in seen:
                del self._health[name]
                self._last_ready.pop(name, None)
        by_node = {node["metadata"]["name"]: (zones.zone_key(node), status == "True")
                   for node, status, _ in checked}
        modes = self._zone_modes(by_node)
        for node, _, marked in checked:
            try:
                self._taint(node, marked, zones.zone_key(node),
                            modes.get(zones.zone_key(node), zones.TAINT))
            except ApiError as e:
                log.warning("node %s: %s", node["metadata"]["name"], e.message)

    def _zone_modes(self, by_node: dict[str, tuple[str, bool]]) -> dict[str, str]:
        states = zones.states(by_node)
        for zone, state in states.items():
            if self._zone_states.get(zone, zones.NORMAL) != state:
                log.info("Controller detected that zone %r is now in state %s.", zone, state)
        every_full = bool(states) and all(s == zones.FULL for s in states.values())
        was_full = bool(self._zone_states) and \
            all(s == zones.FULL for s in self._zone_states.values())
        if every_full and not was_full:
            log.info("Controller detected that all Nodes are not-Ready. Entering master "
                     "disruption mode.")
        elif was_full and not every_full:
            log.info("Controller detected that some Nodes are Ready. Exiting master "
                     "disruption mode.")
        self._zone_states = states
        sizes: dict[str, int] = {}
        for zone, _ in by_node.values():
            sizes[zone] = sizes.get(zone, 0) + 1
        rates = zones.tainting_rates(states, sizes, self.ctx.options.zones)
        for zone, rate in rates.items():
            bucket = self._tainters.setdefault(zone, zones.TokenBucket(max(rate, 0.0)))
            bucket.rate = max(rate, 0.0)
        return {zone: zones.mode(rate) for zone, rate in rates.items()}

    def _check(self, node: dict) -> tuple[str | None, bool]:
        """Ready's status after this check, and whether this check marked it Unknown."""
        name = node["metadata"]["name"]
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        heartbeat = (ready or {}).get("lastHeartbeatTime") or ""
        lease = self.leases.store.get(f"{LEASE_NAMESPACE}/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime") or ""
        now = time.monotonic()
        health = self._health.get(name)
        if health is None or health.heartbeat != heartbeat or health.renew != renew:
            health = self._health[name] = _Health(now, heartbeat, renew)
        opts = self.ctx.options
        grace = opts.node_monitor_grace_period if ready else opts.node_startup_grace_period
        ready_status = (ready or {}).get("status")
        if now - health.probe > grace and ready_status != "Unknown":
            log.info("Node %s hasn't been updated for %.0fs (grace %.0fs); marking its "
                     "conditions Unknown", name, now - health.probe, grace)
            self._mark_unknown(node, conditions)
            if ready_status == "True":
                self.recorder.event({"kind": "Node", **node}, "Normal", "NodeNotReady",
                                    f"Node {name} status is now: NodeNotReady")
                self._mark_pods_not_ready(name)
            ready_status = "Unknown"
        if ready_status == "True" and self._last_ready.get(name, "True") != "True":
            self.recorder.event({"kind": "Node", **node}, "Normal", "NodeReady",
                                f"Node {name} status is now: NodeReady")
        self._last_ready[name] = ready_status
        marked = ready_status == "Unknown" and (ready or {}).get("status") != "Unknown"
        return ready_status, marked

    def _mark_unknown(self, node: dict, conditions: list[dict]) -> None:
        name = node["metadata"]["name"]
        stamp = timefmt.rfc3339()
        updated = copy.deepcopy(conditions)
        by_type = {c.get("type"): c for c in updated}
        for kind in CONDITIONS:
            cond = by_type.get(kind)
            if cond is None:
                updated.append({"type": kind, "status": "Unknown", "reason":
                                "NodeStatusNeverUpdated", "message":
                                "Kubelet never posted node status.",
                                "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                                "lastTransitionTime": stamp})
            elif cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.",
                            lastTransitionTime=stamp)
        self.ctx.client.patch(f"/api/v1/nodes/{name}/status",
                              {"metadata": {"resourceVersion":
                                            node["metadata"]["resourceVersion"]},
                               "status": {"conditions": updated}})

    def _mark_pods_not_ready(self, node_name: str) -> None:
        """The Ready condition of the node's pods turns False, as kube's MarkPodsNotReady: their
        endpoints stop receiving traffic while nobody knows whether they run."""
        for pod in self.pods.store.by_index(indexes.POD_NODE, node_name):
            conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready.update(status="False", lastTransitionTime=timefmt.rfc3339())
            meta = pod["metadata"]
            try:
                self.ctx.client.patch(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                    {"metadata": {"resourceVersion": meta["resourceVersion"]},
                     "status": {"conditions": conditions}})
            except ApiError as e:
                if e.code != 404:
                    log.warning("pod %s/%s: %s", meta["namespace"], meta["name"], e.message)
                continue
            log.info("Updated ready status of pod %s/%s to false", meta["namespace"],
                     meta["name"])
            self.recorder.event({"kind": "Pod", **pod}, "Warning", "NodeNotReady",
                                "Node is not ready")

    def _taint(self, node: dict, marked_unknown: bool, zone: str, no_execute: str) -> None:
        name = node["metadata"]["name"]
        spec = node.get("spec") or {}
        current = spec.get("taints") or []
        conditions = {c.get("type"): c.get("status")
                      for c in (node.get("status") or {}).get("conditions") or []}
        if marked_unknown:  # by this check, not yet in `node`
            conditions |= {kind: "Unknown" for kind in CONDITIONS}
        unschedulable = bool(spec.get("unschedulable"))
        new = taints.reconcile(current, conditions, unschedulable, no_execute)
        # A node newly tainted NoExecute uses the zone's rate (not-ready swapped for
        # unreachable does not); when it is used up, the node's turn comes at a later pass.
        if new is not None and no_execute == zones.TAINT and \
                _no_execute(new) - _no_execute(current) and \
                not _no_execute(current) & taints.MANAGED and not self._tainters[zone].take():
            new = taints.reconcile(current, conditions, unschedulable, zones.HOLD)
        if new is None:
            return
        before = {t.get("key") for t in current if t.get("key") in taints.MANAGED}
        after = {t.get("key") for t in new if t.get("key") in taints.MANAGED}
        # The status patch above changed the resourceVersion: the taints go by a JSON patch
        # that tests the list it replaces instead.
        ops = [{"op": "test", "path": "/spec/taints", "value": current}] if current else []
        ops.append({"op": "add", "path": "/spec/taints", "value": new})
        if not (node.get("spec")):
            ops = [{"op": "add", "path": "/spec", "value": {"taints": new}}]
        self.ctx.client.patch(f"/api/v1/nodes/{name}", ops, "json")
        for key in sorted(after - before):
            log.info("Node %s: added taint %s", name, key)
        for key in sorted(before - after):
            log.info("Node %s: removed taint %s", name, key)


def _no_execute(node_taints: list[dict]) -> set[str]:
    return {t.get("key", "") for t in node_taints if t.get("effect") == "NoExecute"}


def start(ctx: ControllerContext) -> None:
    NodeLifecycleController(ctx).start()
