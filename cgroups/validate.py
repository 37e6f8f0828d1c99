"""Validation of an OCI linux.resources object: pure, no I/O, so bad input is refused before
anything is created. Each refusal is one line naming the full OCI field path.
"""
from __future__ import annotations

from cgroups.errors import CgroupError

_R = "linux.resources"
_INT64_MAX = (1 << 63) - 1
_UINT32_MAX = (1 << 32) - 1
_UINT64_MAX = (1 << 64) - 1

# Kernel limits (kernel/sched/core.c): a CFS period is 1 ms..1 s, a quota at least 1 ms.
MIN_CFS_US = 1000
MAX_CFS_PERIOD_US = 1000000
# cpu.shares range the kernel accepts (v1 clamps silently; runc reads back and refuses).
MIN_SHARES = 2
MAX_SHARES = 262144

# blkio weights: the range of CFQ's blkio.weight, which runc's v2 conversion to io.weight assumes.
MIN_BLKIO_WEIGHT = 10
MAX_BLKIO_WEIGHT = 1000
# blockIO's per-device rate lists, in the order runc writes them.
THROTTLE_KEYS = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                 "throttleWriteIOPSDevice")

# Sections of linux.resources that pycontainer does not apply: refused when they carry values,
# rather than silently ignored.
_UNSUPPORTED = {
    "rdma": "RDMA limits",
}


def validate_resources(resources: dict) -> None:
    """Raise CgroupError (one line, naming the OCI field) for any value we would refuse to write.

    Unknown keys are ignored, as the runtime spec requires of unknown properties.
    """
    if resources is None:
        return
    _object(resources, _R)
    for section, check in (("memory", _memory), ("cpu", _cpu), ("pids", _pids),
                           ("devices", _devices), ("blockIO", _block_io),
                           ("hugepageLimits", _hugepage_limits), ("network", _network),
                           ("unified", _unified)):
        value = resources.get(section)
        if value is not None:
            check(value)
    for section, what in _UNSUPPORTED.items():
        if resources.get(section):
            raise CgroupError(f"{_R}.{section}: {what} are not supported by pycontainer")


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise CgroupError(f"{field}: must be an object, got {value!r}")
    return value


def _int(section: dict, key: str, field: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"{field}: must be an integer, got {value!r}")
    if value > _INT64_MAX:
        raise CgroupError(f"{field}: must be at most {_INT64_MAX}, got {value}")
    return value


def _uint(section: dict, key: str, field: str, maximum: int, required: bool = False) -> int | None:
    """An OCI uint32/uint64/... field: 0..maximum."""
    value = section.get(key)
    if value is None:
        if required:
            raise CgroupError(f"{field}: is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"{field}: must be an integer, got {value!r}")
    if not 0 <= value <= maximum:
        raise CgroupError(f"{field}: must be between 0 and {maximum}, got {value}")
    return value


def _list(section: dict, key: str, field: str) -> list:
    value = section.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"{field}: must be a list, got {value!r}")
    return value


def _bool(section: dict, key: str, field: str) -> None:
    value = section.get(key)
    if value is not None and not isinstance(value, bool):
        raise CgroupError(f"{field}: must be true or false, got {value!r}")


def _limit(section: dict, key: str, field: str) -> int | None:
    """A byte or count limit: positive, 0 (unset, as in runc) or -1 (unlimited)."""
    value = _int(section, key, field)
    if value is not None and value < -1:
        raise CgroupError(f"{field}: must be positive or -1 (unlimited), got {value}")
    return value


def _memory(memory: object) -> None:
    f = _R + ".memory"
    _object(memory, f)
    limit = _limit(memory, "limit", f + ".limit")
    reservation = _limit(memory, "reservation", f + ".reservation")
    swap = _limit(memory, "swap", f + ".swap")
    if limit and limit > 0 and reservation and reservation > limit:
        raise CgroupError(f"{f}.reservation: must not exceed {f}.limit ({reservation} > {limit})")
    # OCI's swap is the memory+swap total (cgroup v1 memsw semantics).
    if swap and swap > 0:
        if not limit:
            raise CgroupError(f"{f}.swap: needs {f}.limit (swap is the memory+swap total)")
        if limit > 0 and swap < limit:
            raise CgroupError(f"{f}.swap: is the memory+swap total and must be at least {f}.limit"
                              f" ({swap} < {limit})")
    swappiness = _int(memory, "swappiness", f + ".swappiness")
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise CgroupError(f"{f}.swappiness: must be between 0 and 100, got {swappiness}")
    for key in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        _bool(memory, key, f"{f}.{key}")


def _cpu(cpu: object) -> None:
    f = _R + ".cpu"
    _object(cpu, f)
    shares = _int(cpu, "shares", f + ".shares")
    if shares and not MIN_SHARES <= shares <= MAX_SHARES:
        raise CgroupError(f"{f}.shares: must be between {MIN_SHARES} and {MAX_SHARES}, got {shares}")
    # A quota without a period (or the reverse) is fine: the kernel's period (100 ms) or an
    # unlimited quota applies, as with runc.
    quota = _int(cpu, "quota", f + ".quota")
    if quota is not None and quota != 0 and quota != -1:
        if quota < 0:
            raise CgroupError(f"{f}.quota: must be positive or -1 (unlimited), got {quota}")
        if quota < MIN_CFS_US:
            raise CgroupError(f"{f}.quota: must be at least {MIN_CFS_US} microseconds, got {quota}")
    period = _int(cpu, "period", f + ".period")
    if period and not MIN_CFS_US <= period <= MAX_CFS_PERIOD_US:
        raise CgroupError(f"{f}.period: must be between {MIN_CFS_US} and {MAX_CFS_PERIOD_US}"
                          f" microseconds, got {period}")
    burst = _int(cpu, "burst", f + ".burst")
    if burst is not None:
        if burst < 0:
            raise CgroupError(f"{f}.burst: must be positive or 0, got {burst}")
        if burst and quota and quota > 0 and burst > quota:
            raise CgroupError(f"{f}.burst: must not exceed {f}.quota ({burst} > {quota})")
    idle = _int(cpu, "idle", f + ".idle")
    if idle is not None and idle not in (0, 1):
        raise CgroupError(f"{f}.idle: must be 0 or 1, got {idle}")
    for key in ("realtimeRuntime", "realtimePeriod"):
        if _int(cpu, key, f"{f}.{key}"):
            raise CgroupError(f"{f}.{key}: real-time CPU limits are not supported by pycontainer")
    for key in ("cpus", "mems"):
        value = cpu.get(key)
        if value is not None:
            check_list(value, f"{f}.{key}")


def check_list(text: object, field: str) -> None:
    """A kernel list of CPU or memory node numbers: "0-3,5,7-8"; "" means unset."""
    if not isinstance(text, str):
        raise CgroupError(f"{field}: must be a string like '0-3,5', got {text!r}")
    if not text:
        return
    for item in text.split(","):
        low, dash, high = item.partition("-")
        if not _number(low) or (dash and not _number(high)) or (dash and int(low) > int(high)):
            raise CgroupError(f"{field}: must be a list like '0-3,5', got {text!r} (bad item {item!r})")


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _pids(pids: object) -> None:
    f = _R + ".pids"
    _object(pids, f)
    _limit(pids, "limit", f + ".limit")


def _devices(devices: object) -> None:
    f = _R + ".devices"
    if not isinstance(devices, list):
        raise CgroupError(f"{f}: must be a list, got {devices!r}")
    for i, rule in enumerate(devices):
        g = f"{f}[{i}]"
        _object(rule, g)
        if not isinstance(rule.get("allow"), bool):
            raise CgroupError(f"{g}.allow: must be true or false, got {rule.get('allow')!r}")
        kind = rule.get("type", "a")
        if kind not in ("a", "b", "c"):
            raise CgroupError(f"{g}.type: must be 'a', 'b' or 'c', got {kind!r}")
        for key in ("major", "minor"):
            number = _int(rule, key, f"{g}.{key}")
            if number is not None and number < -1:
                raise CgroupError(f"{g}.{key}: must be a device number or -1 (any), got {number}")
        access = rule.get("access")
        if (not isinstance(access, str) or not access or set(access) - set("rwm")
                or len(set(access)) != len(access)):
            raise CgroupError(f"{g}.access: must be letters from 'rwm', got {access!r}")


def _block_io(block_io: object) -> None:
    f = _R + ".blockIO"
    _object(block_io, f)
    _weight(block_io, "weight", f + ".weight")
    _weight(block_io, "leafWeight", f + ".leafWeight")
    for i, rule in enumerate(_list(block_io, "weightDevice", f + ".weightDevice")):
        g = f"{f}.weightDevice[{i}]"
        _block_device(rule, g)
        weight = _weight(rule, "weight", g + ".weight")
        leaf_weight = _weight(rule, "leafWeight", g + ".leafWeight")
        if weight is None and leaf_weight is None:
            raise CgroupError(f"{g}: needs a weight or a leafWeight")
    for key in THROTTLE_KEYS:
        for i, rule in enumerate(_list(block_io, key, f"{f}.{key}")):
            g = f"{f}.{key}[{i}]"
            _block_device(rule, g)
            _uint(rule, "rate", g + ".rate", _UINT64_MAX, required=True)


def _weight(section: dict, key: str, field: str) -> int | None:
    """A blkio weight: 10..1000, or 0 (unset, as in runc)."""
    weight = _int(section, key, field)
    if weight and not MIN_BLKIO_WEIGHT <= weight <= MAX_BLKIO_WEIGHT:
        raise CgroupError(f"{field}: must be between {MIN_BLKIO_WEIGHT} and {MAX_BLKIO_WEIGHT},"
                          f" got {weight}")
    return weight


def _block_device(rule: object, field: str) -> None:
    _object(rule, field)
    for key in ("major", "minor"):
        if rule.get(key) is None:
            raise CgroupError(f"{field}.{key}: is required")
        number = _int(rule, key, f"{field}.{key}")
        if number < 0:
            raise CgroupError(f"{field}.{key}: must be a device number (0 or more), got {number}")


def _hugepage_limits(limits: object) -> None:
    f = _R + ".hugepageLimits"
    if not isinstance(limits, list):
        raise CgroupError(f"{f}: must be a list, got {limits!r}")
    for i, entry in enumerate(limits):
        g = f"{f}[{i}]"
        _object(entry, g)
        size = entry.get("pageSize")
        if not (isinstance(size, str) and size[-2:] in ("KB", "MB", "GB") and _number(size[:-2])
                and int(size[:-2]) > 0):
            raise CgroupError(f"{g}.pageSize: must be a size like '2MB', '1GB' or '64KB',"
                              f" got {size!r}")
        _uint(entry, "limit", g + ".limit", _UINT64_MAX, required=True)


def _network(network: object) -> None:
    f = _R + ".network"
    _object(network, f)
    _uint(network, "classID", f + ".classID", _UINT32_MAX)
    for i, entry in enumerate(_list(network, "priorities", f + ".priorities")):
        g = f"{f}.priorities[{i}]"
        _object(entry, g)
        name = entry.get("name")
        # The kernel's dev_valid_name; a space would also split net_prio.ifpriomap's line.
        if (not isinstance(name, str) or not 0 < len(name) < 16 or name in (".", "..")
                or any(c in "/:" or c.isspace() for c in name)):
            raise CgroupError(f"{g}.name: must be a network interface name, got {name!r}")
        _uint(entry, "priority", g + ".priority", _UINT32_MAX, required=True)


def _unified(unified: object) -> None:
    f = _R + ".unified"
    _object(unified, f)
    for key, value in unified.items():
        g = f"{f}[{key!r}]"
        words = key.split(".") if isinstance(key, str) else []
        # controller.file[.more]: "memory.high", "memory.swap.max", "hugetlb.2MB.max"
        if len(words) < 2 or not all(w and set(w) <= _FILE_CHARS for w in words):
            raise CgroupError(f"{g}: must be a cgroup v2 file name like 'memory.high'")
        if not isinstance(value, str):
            raise CgroupError(f"{g}: must be a string, got {value!r}")


_FILE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
