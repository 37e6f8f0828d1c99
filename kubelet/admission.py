"""Pod admission on this node (the kubelet's canAdmitPod): a pod the node cannot take is
refused before anything of it exists, and ends Failed with the reason. Issue 9 adds cpu and
memory against allocatable (OutOfcpu, OutOfmemory) beside the pod count."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Verdict:
    admit: bool
    reason: str = ""
    message: str = ""


def admit(active_pods: int, max_pods: int) -> Verdict:
    if active_pods + 1 > max_pods:
        return Verdict(False, "OutOfpods", f"Node didn't have enough resource: pods, requested: "
                       f"1, used: {active_pods}, capacity: {max_pods}")
    return Verdict(True)
