"""Binding a pod to its node: the pods/binding subresource, and the scheduler's one way to it."""
from __future__ import annotations

from kubeapi import status, timefmt

from .store import Store


def bind_pod(pods: Store, ns: str, name: str, node: str) -> dict:
    """Sets spec.nodeName once (409 if already bound) and marks the pod PodScheduled."""
    def mutate(pod: dict) -> dict:
        if pod["metadata"].get("deletionTimestamp"):
            raise status.conflict("pods", name, "pod is being deleted, cannot be assigned "
                                  "to a host")
        current = pod["spec"].get("nodeName")
        if current:
            raise status.conflict("pods", name, f"pod {name} is already assigned to node "
                                  f'"{current}"')
        pod["spec"]["nodeName"] = node
        pod_status = pod.setdefault("status", {})
        conditions = [c for c in pod_status.get("conditions") or []
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastProbeTime": None, "lastTransitionTime": timefmt.rfc3339()})
        pod_status["conditions"] = conditions
        return pod
    return pods.guaranteed_update(ns, name, mutate, subresource="binding")
