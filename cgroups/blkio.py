"""OCI linux.resources.blockIO (validated) -> the blkio (cgroup v1) and io (cgroup v2) files, as
runc's fs/blkio.go and fs2/io.go write them.

Which weight file exists depends on the kernel's I/O schedulers: v1 has blkio.weight with CFQ
(gone since Linux 5.0) and blkio.bfq.weight with BFQ; v2 has io.bfq.weight with BFQ and io.weight
with blk-iocost. On v2, leafWeight has no equivalent and is ignored, as runc does.
"""
from __future__ import annotations

import os

from cgroups.errors import CgroupError
from cgroups.validate import MAX_BLKIO_WEIGHT, MIN_BLKIO_WEIGHT, THROTTLE_KEYS

F = "linux.resources.blockIO"
# The v1 file and the v2 io.max key of each throttle list.
_V1_THROTTLE = dict(zip(THROTTLE_KEYS, ("blkio.throttle.read_bps_device",
                                        "blkio.throttle.write_bps_device",
                                        "blkio.throttle.read_iops_device",
                                        "blkio.throttle.write_iops_device")))
_V2_THROTTLE = dict(zip(THROTTLE_KEYS, ("rbps", "wbps", "riops", "wiops")))
_SYS_DEV_BLOCK = "/sys/dev/block"

# (file name, value, OCI field) to write, in order.
Writes = list[tuple[str, str, str]]


def _device_rules(block_io: dict) -> list[tuple[str, int, int]]:
    """(OCI field, major, minor) of every per-device rule."""
    rules = [(f"{F}.weightDevice[{i}]", r["major"], r["minor"])
             for i, r in enumerate(block_io.get("weightDevice") or [])]
    for key in THROTTLE_KEYS:
        rules.extend((f"{F}.{key}[{i}]", r["major"], r["minor"])
                     for i, r in enumerate(block_io.get(key) or []))
    return rules


def check_devices(block_io: dict) -> None:
    """Refuse, before anything is created, a rule for a block device this host does not have
    (the kernel would refuse the write with a bare ENODEV)."""
    if not os.path.isdir(_SYS_DEV_BLOCK):
        return  # no sysfs here to ask: the write will tell
    for field, major, minor in _device_rules(block_io):
        if not os.path.exists(f"{_SYS_DEV_BLOCK}/{major}:{minor}"):
            raise CgroupError(f"{field}: this host has no block device {major}:{minor}")


def v1_writes(block_io: dict, present: set[str]) -> Writes:
    """The writes into a v1 blkio cgroup whose directory holds the files named in present."""
    writes: Writes = []
    weight_file = device_file = None
    if "blkio.weight" in present:  # CFQ; otherwise BFQ's files, as runc falls back to
        weight_file, device_file = "blkio.weight", "blkio.weight_device"
    elif "blkio.bfq.weight" in present:
        weight_file, device_file = "blkio.bfq.weight", "blkio.bfq.weight_device"

    def weight(field: str, name: str | None, value: str) -> None:
        if name is None:
            raise CgroupError(f"{field}: this kernel has neither blkio.weight nor blkio.bfq.weight"
                              " (proportional weights need the BFQ I/O scheduler)")
        writes.append((name, value, field))

    def leaf_weight(field: str, name: str, value: str) -> None:
        if name not in present:
            raise CgroupError(f"{field}: this kernel has no {name} (leaf weights were the CFQ"
                              " I/O scheduler's, removed in Linux 5.0)")
        writes.append((name, value, field))

    if block_io.get("weight"):
        weight(F + ".weight", weight_file, str(block_io["weight"]))
    if block_io.get("leafWeight"):
        leaf_weight(F + ".leafWeight", "blkio.leaf_weight", str(block_io["leafWeight"]))
    for i, rule in enumerate(block_io.get("weightDevice") or []):
        field = f"{F}.weightDevice[{i}]"
        device = f"{rule['major']}:{rule['minor']}"
        if rule.get("weight"):
            weight(field + ".weight", device_file, f"{device} {rule['weight']}")
        if rule.get("leafWeight"):
            leaf_weight(field + ".leafWeight", "blkio.leaf_weight_device",
                        f"{device} {rule['leafWeight']}")
    for key, name in _V1_THROTTLE.items():
        # A rate of 0 removes the device's limit.
        writes.extend((name, f"{r['major']}:{r['minor']} {r['rate']}", f"{F}.{key}[{i}]")
                      for i, r in enumerate(block_io.get(key) or []))
    return writes


def v2_writes(block_io: dict, bfq_weight: str | None) -> Writes:
    """The writes into a v2 cgroup; bfq_weight is what its io.bfq.weight reads, None without BFQ.

    Weights go to io.bfq.weight as they are when BFQ is there, else to io.weight converted (runc's
    ConvertBlkIOToIOWeightValue). Per-device weights go to a BFQ that takes them (Linux 5.4: its
    file then lists devices, not a lone number); without one runc drops them silently, we convert
    them into io.weight's per-device form instead, as the OCI spec asks of a possible conversion
    (the kernel takes that for a device blk-iocost is enabled for, and refuses it elsewhere).
    """
    writes: Writes = []
    if block_io.get("weight"):
        if bfq_weight is not None:
            writes.append(("io.bfq.weight", str(block_io["weight"]), F + ".weight"))
        else:
            writes.append(("io.weight", str(io_weight(block_io["weight"])), F + ".weight"))
    bfq_per_device = bfq_weight is not None and not bfq_weight.strip().isdigit()
    for i, rule in enumerate(block_io.get("weightDevice") or []):
        if not rule.get("weight"):
            continue
        device = f"{rule['major']}:{rule['minor']}"
        field = f"{F}.weightDevice[{i}].weight"
        if bfq_per_device:
            writes.append(("io.bfq.weight", f"{device} {rule['weight']}", field))
        else:
            writes.append(("io.weight", f"{device} {io_weight(rule['weight'])}", field))
    for key, name in _V2_THROTTLE.items():
        for i, r in enumerate(block_io.get(key) or []):
            # v1 reads a rate of 0 as "no limit"; io.max refuses 0 (ERANGE) and says "max".
            rate = r["rate"] or "max"
            writes.append(("io.max", f"{r['major']}:{r['minor']} {name}={rate}",
                           f"{F}.{key}[{i}]"))
    return writes


def io_weight(weight: int) -> int:
    """A blkio weight (10..1000) -> io.weight (1..10000), linearly, as runc converts it."""
    return 1 + (weight - MIN_BLKIO_WEIGHT) * 9999 // (MAX_BLKIO_WEIGHT - MIN_BLKIO_WEIGHT)
