"""OCI linux.resources values (cgroup v1 semantics) -> cgroup v2 file values, as runc and crun do."""
from __future__ import annotations

from cgroups.errors import CgroupError

DEFAULT_CFS_PERIOD_US = 100000


def cpu_weight(shares: int) -> int:
    """cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000, default 100); 0 is unset.

    runc >= 1.4 (opencontainers/cgroups utils.go ConvertCPUSharesToCgroupV2Value) and crun
    (cgroup-internal.h convert_shares_to_weight) use a quadratic curve in log2(shares) through
    (2, 1), (1024, 100) and (262144, 10000):
        weight = ceil(10 ** ((l*l + 125*l) / 612 - 7/34)),  l = log2(shares)
    so the defaults map onto each other. (runc <= 1.3 used the line
    1 + (shares - 2) * 9999 / 262142, which sends the default 1024 to 39.)
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math  # only here: keeps math off the start path when no shares are given
    l = math.log2(shares)
    return math.ceil(10 ** ((l * l + 125 * l) / 612.0 - 7.0 / 34.0))


def cpu_max(quota: int | None, period: int | None) -> str | None:
    """cpu.quota/cpu.period (microseconds) -> the cpu.max line "$QUOTA $PERIOD" or "max $PERIOD".

    As runc's fs2 setCPU: a non-positive quota is "max", a missing period is the kernel's
    default 100000; None when neither is set.
    """
    if not quota and not period:
        return None
    return f"{quota if quota and quota > 0 else 'max'} {period or DEFAULT_CFS_PERIOD_US}"


def swap_max(swap: int | None, limit: int | None) -> int | None:
    """OCI memory.swap (the memory+swap total, v1 memsw semantics) -> memory.swap.max (swap only).

    runc's ConvertMemorySwapToCgroupV2Value: memory.swap.max = swap - limit; -1 stays -1 ("max");
    an unlimited limit with no swap given means unlimited swap too; None means leave it alone.
    """
    swap = swap or 0
    limit = limit or 0
    if limit == -1 and swap == 0:
        return -1
    if swap in (0, -1) or limit == -1:
        return swap or None
    if limit == 0:
        raise CgroupError("linux.resources.memory.swap: needs linux.resources.memory.limit"
                          " (swap is the memory+swap total)")
    if swap < limit:
        raise CgroupError("linux.resources.memory.swap: is the memory+swap total and must be at"
                          f" least linux.resources.memory.limit ({swap} < {limit})")
    return swap - limit


def limit_value(value: int) -> str:
    """A byte or count limit as cgroup v2 writes it: -1 is "max"."""
    return "max" if value == -1 else str(value)
