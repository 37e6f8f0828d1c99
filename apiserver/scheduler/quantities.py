"""A pod's resource requests and a node's allocatable as integers, as kube-scheduler keeps
them (CPU in millicores, the rest in units): summed and compared in the hot path without
Fractions, parsed once per pod and per node change."""
from __future__ import annotations

import math

from kubeapi.quantity import parse_quantity


def integer_quantity(resource: str, value: object) -> int:
    """kube's MilliValue for cpu and Value for the rest, both rounded up."""
    q = parse_quantity(value)
    return math.ceil(q * 1000) if resource == "cpu" else math.ceil(q)


def pod_requests(pod: dict) -> dict[str, int]:
    """The larger of the sum over containers and the largest init container, per resource."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = total.get(name, 0) + integer_quantity(name, value)
    for c in spec.get("initContainers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = max(total.get(name, 0), integer_quantity(name, value))
    return {name: q for name, q in total.items() if q}
