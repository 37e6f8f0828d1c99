"""Disruption zones, as kube's node lifecycle controller judges them before it taints nodes
NoExecute: nodes are grouped by region and zone labels; a zone with no Ready node is in
FullDisruption, one with more than 2 not-Ready nodes making up at least 55 % of it in
PartialDisruption, else Normal. When every zone is in FullDisruption the problem is more likely
the control plane's view than the nodes ("master disruption mode"): NoExecute taints are taken
off and none are added, so that nothing is evicted. A small zone (50 nodes or fewer) in
PartialDisruption gets no new NoExecute taints either (kube's rate for it is 0); a large one
gets them at --secondary-node-eviction-rate, every other zone at --node-eviction-rate (nodes
per second, one at a time: a token bucket of 1)."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ..context import Thresholds

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"
TAINT, HOLD, CLEAR = "taint", "hold", "clear"   # what to do with NoExecute taints


def zone_key(node: dict) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: int, not_ready: int, limits: Thresholds = Thresholds()) -> str:
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / (ready + not_ready) >= limits.unhealthy_zone:
        return PARTIAL
    return NORMAL


def states(ready_by_node: dict[str, tuple[str, bool]],
           limits: Thresholds = Thresholds()) -> dict[str, str]:
    """Zone -> state, from node -> (zone, Ready is True)."""
    ready, not_ready = Counter(), Counter()
    for zone, is_ready in ready_by_node.values():
        (ready if is_ready else not_ready)[zone] += 1
    return {zone: zone_state(ready[zone], not_ready[zone], limits)
            for zone in set(ready) | set(not_ready)}


def tainting_rates(zone_states: dict[str, str], sizes: dict[str, int],
                   limits: Thresholds = Thresholds()) -> dict[str, float]:
    """Zone -> NoExecute taints added per second; 0 adds none (HOLD), -1 takes them off
    (master disruption: CLEAR)."""
    if zone_states and all(s == FULL for s in zone_states.values()):
        return {zone: -1.0 for zone in zone_states}
    rates = {}
    for zone, state in zone_states.items():
        if state != PARTIAL:
            rates[zone] = limits.eviction_rate
        else:
            rates[zone] = limits.secondary_eviction_rate \
                if sizes.get(zone, 0) > limits.large_cluster else 0.0
    return rates


def mode(rate: float) -> str:
    return CLEAR if rate < 0 else HOLD if rate == 0 else TAINT


@dataclass
class TokenBucket:
    """One node tainted at a time, `rate` per second (kube's burst of 1)."""
    rate: float
    tokens: float = 1.0
    last: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(1.0, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
