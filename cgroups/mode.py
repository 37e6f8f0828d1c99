"""Which cgroup hierarchies this host has: pure v1, pure v2 (unified) or hybrid.

Decided from /proc/self/mountinfo (what is mounted where) and /proc/filesystems (what the kernel
supports, for the error when nothing is mounted), never from guesses about /sys/fs/cgroup.
"""
from __future__ import annotations

from cgroups.errors import CgroupError
from cgroups.files import read_text

V1 = "v1"
V2 = "v2"
HYBRID = "hybrid"

# Mount options of a v1 cgroup mount that are not controllers.
_NOT_CONTROLLERS = frozenset({"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode",
                              "favordynmods"})


class Hierarchies:
    """The mounted cgroup hierarchies.

    v1 maps each v1 controller (and "name=systemd") to the mount point of its hierarchy; co-mounted
    controllers (e.g. "cpu,cpuacct") share one mount point. unified is the cgroup2 mount point,
    or None.
    """

    __slots__ = ("mode", "v1", "unified")

    def __init__(self, mode: str, v1: dict[str, str], unified: str | None) -> None:
        self.mode = mode
        self.v1 = v1
        self.unified = unified

    def __repr__(self) -> str:
        return f"Hierarchies(mode={self.mode!r}, v1={self.v1!r}, unified={self.unified!r})"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "v1": dict(self.v1), "unified": self.unified}

    @classmethod
    def from_dict(cls, raw: dict) -> Hierarchies:
        return cls(raw["mode"], dict(raw["v1"]), raw["unified"])


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        octal = field[i + 1:i + 4]
        if field[i] == "\\" and len(octal) == 3 and octal.isdigit():
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str, filesystems: str = "") -> Hierarchies:
    """The hierarchies described by the text of a mountinfo file (pure, for tests)."""
    v1: dict[str, str] = {}
    unified = None
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype, super_options = fields[sep + 1], fields[sep + 3]
        mountpoint = _unescape(fields[4])
        if fstype == "cgroup2":
            if unified is None:
                unified = mountpoint
        elif fstype == "cgroup":
            for option in super_options.split(","):
                if option in _NOT_CONTROLLERS:
                    continue
                if "=" in option and option != "name=systemd":
                    continue  # release_agent=..., other named hierarchies: not ours to manage
                v1.setdefault(option, mountpoint)
    controllers = [c for c in v1 if not c.startswith("name=")]
    if controllers:
        return Hierarchies(HYBRID if unified else V1, v1, unified)
    if unified:
        return Hierarchies(V2, {}, unified)
    supported = [w for w in filesystems.split() if w in ("cgroup", "cgroup2")]
    if supported:
        raise CgroupError(f"no cgroup hierarchy is mounted (the kernel supports {', '.join(supported)}:"
                          f" mount cgroup2 on /sys/fs/cgroup)")
    raise CgroupError("no cgroup hierarchy is mounted and the kernel supports neither cgroup"
                      " nor cgroup2")


def detect(mountinfo: str = "/proc/self/mountinfo",
           filesystems: str = "/proc/filesystems") -> Hierarchies:
    """The hierarchies of this host, as seen from this process's mount namespace."""
    text = read_text(mountinfo)
    try:
        return parse_mountinfo(text)
    except CgroupError:
        return parse_mountinfo(text, read_text(filesystems))
