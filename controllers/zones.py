"""Disruption zones, as kube's node lifecycle controller judges them before it taints nodes
NoExecute: nodes are grouped by region and zone labels; a zone with no Ready node is in
FullDisruption, one with more than 2 not-Ready nodes making up at least 55 % of it in
PartialDisruption, else Normal. When every zone is in FullDisruption the problem is more likely
the control plane's view than the nodes ("master disruption mode"): NoExecute taints are taken
off and none are added, so that nothing is evicted. A small zone (50 nodes or fewer) in
PartialDisruption gets no new NoExecute taints either (kube's rate for it is 0)."""
from __future__ import annotations

from collections import Counter

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"
TAINT, HOLD, CLEAR = "taint", "hold", "clear"   # what to do with NoExecute taints


def zone_key(node: dict) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: int, not_ready: int) -> str:
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / (ready + not_ready) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def states(ready_by_node: dict[str, tuple[str, bool]]) -> dict[str, str]:
    """Zone -> state, from node -> (zone, Ready is True)."""
    ready, not_ready = Counter(), Counter()
    for zone, is_ready in ready_by_node.values():
        (ready if is_ready else not_ready)[zone] += 1
    return {zone: zone_state(ready[zone], not_ready[zone]) for zone in set(ready) | set(not_ready)}


def no_execute_modes(zone_states: dict[str, str], sizes: dict[str, int]) -> dict[str, str]:
    """Zone -> TAINT, HOLD or CLEAR."""
    if zone_states and all(s == FULL for s in zone_states.values()):
        return {zone: CLEAR for zone in zone_states}
    return {zone: HOLD if s == PARTIAL and sizes.get(zone, 0) <= LARGE_CLUSTER_THRESHOLD
            else TAINT for zone, s in zone_states.items()}
