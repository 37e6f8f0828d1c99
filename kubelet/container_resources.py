"""A container's requests and limits as OCI linux.resources, as the kubelet's
generateLinuxContainerResources does: cpu shares from the cpu request (the limit when there is
no request, 2 when neither), a CFS quota over a 100 ms period from the cpu limit, the memory
limit. Issue 9 adds the QoS classes, the pod-level cgroup limits and oom_score_adj."""
from __future__ import annotations

from fractions import Fraction

from apiserver.quantity import parse_quantity

CPU_PERIOD = 100_000          # µs, the kubelet's quotaPeriod
MIN_QUOTA = 1_000             # µs: the kernel refuses less
MIN_SHARES, MAX_SHARES = 2, 262_144


def _quantity(container: dict, kind: str, name: str) -> Fraction | None:
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return None
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise ValueError(f"resources.{kind}.{name}: {value!r} is not a quantity") from None
    if amount < 0:
        raise ValueError(f"resources.{kind}.{name}: {value!r} must not be negative")
    return amount


def linux_resources(container: dict) -> dict:
    """The OCI linux.resources of a pod's container; ValueError names a bad quantity."""
    cpu_limit = _quantity(container, "limits", "cpu")
    cpu_request = _quantity(container, "requests", "cpu")
    memory_limit = _quantity(container, "limits", "memory")
    if cpu_request is None:
        cpu_request = cpu_limit
    milli = int(cpu_request * 1000) if cpu_request else 0
    shares = min(max(milli * 1024 // 1000, MIN_SHARES), MAX_SHARES)
    cpu: dict = {"shares": shares}
    if cpu_limit:
        cpu["quota"] = max(int(cpu_limit * CPU_PERIOD), MIN_QUOTA)
        cpu["period"] = CPU_PERIOD
    resources: dict = {"cpu": cpu}
    if memory_limit:
        resources["memory"] = {"limit": int(memory_limit)}
    return resources
