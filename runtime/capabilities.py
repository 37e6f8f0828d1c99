"""Linux capability names and the process's five capability sets.

Names are the kernel ABI (include/uapi/linux/capability.h). Applying them goes through
python-prctl's C module, which wraps libcap; ambient capabilities, which it does not cover, go
through prctl(PR_CAP_AMBIENT) directly.
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime.errors import PycontainerError

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}


def last_cap() -> int:
    """The highest capability the running kernel knows (a file read: callers read it once)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


class CapabilitySets:
    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")

    def __init__(self, bounding: list[int], effective: list[int], inheritable: list[int],
                 permitted: list[int], ambient: list[int]) -> None:
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient


def drop_bounding(syscalls: Syscalls, keep: list[int], last: int) -> None:
    """Drops every capability up to `last` (last_cap()) not in `keep` from the bounding set
    (needs CAP_SETPCAP: do it before changing user)."""
    kept = set(keep)
    for cap in range(last + 1):
        if cap not in kept:
            syscalls.prctl(lx.PR_CAPBSET_DROP, cap)


def apply(syscalls: Syscalls, caps: CapabilitySets, warn, last: int) -> None:
    """Sets effective, permitted and inheritable exactly (every other capability up to `last`,
    last_cap(), cleared), then raises the ambient ones. As runc:
    an ambient capability the kernel refuses (one that is not both permitted and inheritable, as
    in runc 1.1's own default spec) is reported through `warn`, not a failure."""
    try:
        syscalls.set_caps(set(caps.effective), set(caps.permitted), set(caps.inheritable), last)
    except OSError as e:
        raise _refused(caps, e) from None
    syscalls.ambient_clear_all()
    for cap in caps.ambient:
        try:
            syscalls.ambient_raise(cap)
        except OSError as e:
            name = NAMES[cap] if cap < len(NAMES) else str(cap)
            warn(f"process.capabilities.ambient: {name} not raised ({os.strerror(e.errno)}): "
                 "an ambient capability must also be permitted and inheritable")


def _refused(caps: CapabilitySets, error: OSError) -> PycontainerError:
    """Which capability the kernel would not grant: one the runtime itself does not hold (the
    host's bounding set lacks it), named with the set that asked for it."""
    held = _permitted_now()
    for field, wanted in (("permitted", caps.permitted), ("effective", caps.effective),
                          ("inheritable", caps.inheritable)):
        missing = [NAMES[c] if c < len(NAMES) else str(c) for c in wanted
                   if held is not None and c not in held]
        if missing:
            return PycontainerError(f"process.capabilities.{field}: {', '.join(missing)}: not held "
                                    "by the runtime (outside this host's bounding set)")
    return PycontainerError(f"process.capabilities: the kernel refused the sets: "
                            f"{os.strerror(error.errno or 1)}")


def _permitted_now() -> set[int] | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapPrm:"):
                    mask = int(line.split()[1], 16)
                    return {c for c in range(64) if mask >> c & 1}
    except OSError:
        pass
    return None
