"""Requests and limits as the kubelet turns them into cgroup values (pkg/kubelet/cm
helpers_linux.go) and OOM scores (pkg/kubelet/qos/policy.go): cpu shares from requests (at
least 2), CFS quota from limits over a 100 ms period, the memory limit, per container and per
pod, and the oom_score_adj of a container's processes by its pod's QoS class (Pod.qos_class)."""
from __future__ import annotations

from kubeapi.quantity import parse_quantity
from kubelet.pods import Pod

GUARANTEED, BURSTABLE, BEST_EFFORT = "Guaranteed", "Burstable", "BestEffort"

MIN_SHARES, MAX_SHARES = 2, 262_144
SHARES_PER_CPU = 1024
QUOTA_PERIOD = 100_000          # µs, the kubelet's quotaPeriod
MIN_QUOTA = 1000                # µs: the kernel refuses less

GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000


def _amount(container: dict, kind: str, name: str) -> int:
    """cpu in millicores, memory in bytes; 0 when not given; ValueError names a bad one."""
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return 0
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise ValueError(f"resources.{kind}.{name}: {value!r} is not a quantity") from None
    if amount < 0:
        raise ValueError(f"resources.{kind}.{name}: {value!r} must not be negative")
    return int(amount * 1000) if name == "cpu" else int(amount)


def limit(container: dict, name: str) -> int:
    return _amount(container, "limits", name)


def request(container: dict, name: str) -> int:
    """The request, or the limit when only that is given (the API's defaulting, which static
    pods do not go through)."""
    return _amount(container, "requests", name) or limit(container, name)


def cpu_shares(millicpu: int) -> int:
    return min(max(millicpu * SHARES_PER_CPU // 1000, MIN_SHARES), MAX_SHARES)


def cpu_quota(millicpu: int) -> int:
    """0 (no quota) for no limit."""
    if millicpu == 0:
        return 0
    return max(millicpu * QUOTA_PERIOD // 1000, MIN_QUOTA)


def container_resources(container: dict) -> dict:
    """The container's OCI linux.resources (generateLinuxContainerResources): shares from the
    cpu request, a CFS quota from the cpu limit, the memory limit."""
    cpu = {"shares": cpu_shares(request(container, "cpu"))}
    quota = cpu_quota(limit(container, "cpu"))
    if quota:
        cpu.update(quota=quota, period=QUOTA_PERIOD)
    resources: dict = {"cpu": cpu}
    memory = limit(container, "memory")
    if memory:
        resources["memory"] = {"limit": memory}
    return resources


def pod_requests(pod: Pod, name: str) -> int:
    """What the pod asks of the node: the sum over its app containers, or the largest init
    container's request if that is more (they run one at a time)."""
    apps = sum(request(c, name) for c in pod.containers)
    inits = max((request(c, name) for c in pod.init_containers), default=0)
    return max(apps, inits)


def pod_resources(pod: Pod, pids_limit: int) -> dict:
    """The pod cgroup's linux.resources (ResourceConfigForPod): shares from the requests, a
    quota and a memory limit only when every container has that limit; BestEffort pods get the
    minimum shares."""
    containers = pod.containers
    cls = pod.qos_class
    resources: dict = {}
    if cls == BEST_EFFORT:
        resources["cpu"] = {"shares": MIN_SHARES}
    else:
        resources["cpu"] = {"shares": cpu_shares(pod_requests(pod, "cpu"))}
        if containers and all(limit(c, "cpu") for c in containers):
            total = max(sum(limit(c, "cpu") for c in containers),
                        max((limit(c, "cpu") for c in pod.init_containers), default=0))
            resources["cpu"].update(quota=cpu_quota(total), period=QUOTA_PERIOD)
        if containers and all(limit(c, "memory") for c in containers):
            total = max(sum(limit(c, "memory") for c in containers),
                        max((limit(c, "memory") for c in pod.init_containers), default=0))
            resources["memory"] = {"limit": total}
    if pids_limit > 0:
        resources["pids"] = {"limit": pids_limit}
    return resources


def oom_score_adj(pod: Pod, container: dict, memory_capacity: int) -> int:
    """policy.go GetContainerOOMScoreAdjust: Guaranteed -997, BestEffort 1000, Burstable
    1000 - 1000 * request / capacity, kept above any Guaranteed score and below BestEffort's."""
    cls = pod.qos_class
    if cls == GUARANTEED:
        return GUARANTEED_OOM_SCORE_ADJ
    if cls == BEST_EFFORT:
        return BEST_EFFORT_OOM_SCORE_ADJ
    adj = 1000 - (1000 * request(container, "memory")) // max(memory_capacity, 1)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BEST_EFFORT_OOM_SCORE_ADJ:
        return adj - 1
    return adj
