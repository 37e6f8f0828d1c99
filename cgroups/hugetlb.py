"""OCI linux.resources.hugepageLimits (validated) -> the hugetlb files of cgroup v1 and v2, as
runc's fs/hugetlb.go and fs2/hugetlb.go write them: the page-fault limit, then the reservation
limit (`.rsvd.`, Linux 5.7) with the same value where the kernel has it."""
from __future__ import annotations

import os

from cgroups.errors import CgroupError
from cgroups.files import write_field, write_file

F = "linux.resources.hugepageLimits"
_HUGEPAGES = "/sys/kernel/mm/hugepages"


def host_page_sizes() -> list[str]:
    """This kernel's huge page sizes as the hugetlb files name them ("2MB", "1GB", "64KB")."""
    try:
        names = os.listdir(_HUGEPAGES)
    except FileNotFoundError:
        return []
    sizes = []
    for name in names:  # hugepages-2048kB
        kib = name.removeprefix("hugepages-").removesuffix("kB")
        if kib.isdigit():
            sizes.append(_size_name(int(kib)))
    return sorted(sizes, key=_kib)


def _size_name(kib: int) -> str:
    # The kernel's own naming (mm/hugetlb_cgroup.c mem_fmt): the largest unit it reaches.
    if kib >= 1 << 20:
        return f"{kib >> 20}GB"
    if kib >= 1 << 10:
        return f"{kib >> 10}MB"
    return f"{kib}KB"


def _kib(size: str) -> int:
    return int(size[:-2]) << {"KB": 0, "MB": 10, "GB": 20}[size[-2:]]


def check_page_sizes(limits: list[dict]) -> None:
    """Refuse, before anything is created, a page size this kernel does not have."""
    sizes = host_page_sizes()
    for i, entry in enumerate(limits):
        if entry["pageSize"] not in sizes:
            have = ", ".join(sizes) if sizes else "no huge pages at all"
            raise CgroupError(f"{F}[{i}].pageSize: {entry['pageSize']!r} is not a huge page size"
                              f" of this host (it has {have})")


def apply(directory: str, limits: list[dict], suffix: str) -> None:
    """Write each limit into hugetlb.<size>.<suffix> and hugetlb.<size>.rsvd.<suffix>
    (suffix: "limit_in_bytes" on v1, "max" on v2)."""
    rsvd = True
    for i, entry in enumerate(limits):
        prefix = f"{directory}/hugetlb.{entry['pageSize']}"
        value = str(entry["limit"])
        field = f"{F}[{i}].limit"
        write_field(f"{prefix}.{suffix}", value, field)
        if rsvd:
            try:
                write_file(f"{prefix}.rsvd.{suffix}", value)
            except FileNotFoundError:
                rsvd = False  # a kernel before 5.7: page-fault limits only
            except OSError as e:
                raise CgroupError(f"{field}: writing {value!r} to {prefix}.rsvd.{suffix} failed:"
                                  f" {e.strerror}") from None
