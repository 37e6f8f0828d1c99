"""/metrics: a few of the kubelet's own metrics (pkg/kubelet/metrics), counted from the
runtime service at the time of the scrape: kubelet_node_name, kubelet_running_pods (pods
with a ready sandbox), kubelet_running_containers by container_state."""
from __future__ import annotations

from collections import Counter

from cri.api import SANDBOX_READY, RuntimeService

from kubelet.stats.prometheus import Family, Sample, render

_STATES = ("created", "running", "exited", "unknown")


def families(node_name: str, runtime: RuntimeService) -> list[Family]:
    sandboxes = runtime.list_pod_sandboxes()
    running_pods = len({s.metadata.uid for s in sandboxes if s.state == SANDBOX_READY})
    states = Counter(c.state.removeprefix("CONTAINER_").lower()
                     for c in runtime.list_containers())
    return [
        Family("kubelet_node_name", "The node's name. The count is always 1.", "gauge",
               [Sample(1, {"node": node_name})]),
        Family("kubelet_running_pods", "Number of pods that have a running pod sandbox",
               "gauge", [Sample(running_pods)]),
        Family("kubelet_running_containers", "Number of containers currently running",
               "gauge", [Sample(states.get(s, 0), {"container_state": s}) for s in _STATES
                         if states.get(s)]),
    ]


def text(node_name: str, runtime: RuntimeService) -> str:
    return render(families(node_name, runtime))
