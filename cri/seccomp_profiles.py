"""A container's linux.seccomp from the CRI's SecurityProfile (the runtime's side of the
kubelet's seccompProfile, as containerd does it): RuntimeDefault is this runtime's default
profile below; Localhost is a JSON file in Docker's profile format (plain OCI linux.seccomp is
a subset of it), resolved for this host's architecture and the container's capabilities and
checked before anything is created.

The default profile is a deny list, as LXC's is, not Docker's allow list: every syscall is
allowed except those that reach kernel state a container does not own (keyrings, modules,
clocks, mounts and new namespaces, kexec, BPF, perf, io_uring). A group is allowed again when
the container holds the capability that governs it, so added capabilities keep their meaning.
A syscall the kernel learns later is allowed; an allow list would refuse it."""
from __future__ import annotations

import json
import os
import platform

from overlay.manifest import host_platform
from runtime import seccomp
from runtime.errors import ConfigError

from cri.api import SecurityProfile

EPERM, ENOSYS = 1, 38

# (capabilities that allow them, any of which will do; syscalls refused with EPERM otherwise)
_DENIED: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((), ("add_key", "keyctl", "request_key", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "nfsservctl", "sysfs", "_sysctl", "uselib", "ustat", "vm86",
          "vm86old")),
    (("CAP_SYS_ADMIN",), ("mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig",
                          "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
                          "unshare", "setns", "swapon", "swapoff", "quotactl", "quotactl_fd",
                          "lookup_dcookie", "fanotify_init")),
    (("CAP_SYS_ADMIN", "CAP_BPF"), ("bpf",)),
    (("CAP_SYS_ADMIN", "CAP_PERFMON"), ("perf_event_open",)),
    (("CAP_SYS_MODULE",), ("init_module", "finit_module", "delete_module", "create_module",
                           "query_module", "get_kernel_syms")),
    (("CAP_SYS_BOOT",), ("reboot", "kexec_load", "kexec_file_load")),
    (("CAP_SYS_TIME",), ("settimeofday", "stime", "clock_settime", "clock_settime64",
                         "clock_adjtime", "clock_adjtime64")),
    (("CAP_SYS_PACCT",), ("acct",)),
    (("CAP_SYS_RAWIO",), ("iopl", "ioperm")),
    (("CAP_SYS_NICE",), ("mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages")),
    (("CAP_SYSLOG",), ("syslog",)),
    (("CAP_SYS_TTY_CONFIG",), ("vhangup",)),
    (("CAP_DAC_READ_SEARCH",), ("open_by_handle_at",)),
    (("CAP_SYS_PTRACE",), ("userfaultfd",)),
)
# clone(2) flags that make namespaces; without CAP_SYS_ADMIN each is refused (the flags are the
# first argument on the architectures below).
_CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                          0x20000000, 0x40000000)
# The native architecture first, then those its kernel also runs (32-bit programs).
_ARCHITECTURES = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                  "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}


class ProfileError(ValueError):
    """A Localhost profile that cannot be read or used (CreateContainerError)."""


def linux_seccomp(profile: SecurityProfile | None, capabilities: list[str]) -> dict | None:
    """The OCI linux.seccomp for the container, None for Unconfined."""
    if profile is None:
        return None
    if profile.profile_type == "RuntimeDefault":
        return runtime_default(capabilities)
    return localhost(profile.localhost_ref, capabilities)


def runtime_default(capabilities: list[str]) -> dict:
    held = set(capabilities)
    syscalls = [{"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}
                for allowed_by, names in _DENIED if not held & set(allowed_by)]
    if "CAP_SYS_ADMIN" not in held:
        syscalls += [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                      "args": [{"index": 0, "value": flag, "valueTwo": flag,
                                "op": "SCMP_CMP_MASKED_EQ"}]}
                     for flag in _CLONE_NAMESPACE_FLAGS]
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes the C library
        # fall back to clone, where the rules above apply.
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": list(_ARCHITECTURES.get(platform.machine(), [])),
            "syscalls": syscalls}


def localhost(path: str, capabilities: list[str]) -> dict:
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise ProfileError(f'cannot load seccomp profile "{path}": open {path}: '
                           f"{(e.strerror or str(e)).lower()}") from None
    except ValueError as e:
        raise ProfileError(f'decoding seccomp profile failed "{path}": {e}') from None
    if not isinstance(raw, dict):
        raise ProfileError(f'decoding seccomp profile failed "{path}": not a JSON object')
    profile = {k: raw[k] for k in ("defaultAction", "defaultErrnoRet", "flags") if k in raw}
    profile["architectures"] = _architectures(raw)
    profile["syscalls"] = [_rule(entry) for entry in raw.get("syscalls") or []
                           if not isinstance(entry, dict) or _applies(entry, capabilities)]
    try:
        seccomp.parse(profile)
    except ConfigError as e:
        raise ProfileError(f'seccomp profile "{path}": {e}') from None
    return profile


def _architectures(raw: dict) -> list:
    """Docker's archMap names the native architecture with its sub-architectures; a plain
    architectures list is taken as it is."""
    native = (_ARCHITECTURES.get(platform.machine()) or [None])[0]
    for entry in raw.get("archMap") or []:
        if isinstance(entry, dict) and entry.get("architecture") == native:
            return [native, *(entry.get("subArchitectures") or [])]
    return list(raw.get("architectures") or [])


def _applies(entry: dict, capabilities: list[str]) -> bool:
    """Docker's includes (every capability held, this architecture, the kernel at least) and
    excludes (any capability held, this architecture); architectures by their Go names, as
    the Node reports its own."""
    goarch = host_platform()[1]
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    if not set(includes.get("caps") or []) <= set(capabilities):
        return False
    if includes.get("arches") and goarch not in includes["arches"]:
        return False
    if includes.get("minKernel") and _kernel() < _version(includes["minKernel"]):
        return False
    if set(excludes.get("caps") or []) & set(capabilities):
        return False
    return goarch not in (excludes.get("arches") or [])


def _rule(entry: object) -> object:
    if not isinstance(entry, dict):
        return entry        # seccomp.parse names it
    names = entry.get("names") or ([entry["name"]] if entry.get("name") else None)
    return {**{k: entry[k] for k in ("action", "errnoRet", "args") if k in entry},
            "names": names}


def _kernel() -> tuple[int, ...]:
    return _version(os.uname().release)


def _version(text: str) -> tuple[int, ...]:
    numbers = []
    for part in str(text).split("-")[0].split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)
