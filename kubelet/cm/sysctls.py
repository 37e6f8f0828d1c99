"""Pod sysctls at admission (the kubelet's sysctl allowlist): the safe set is always allowed,
others only when allowedUnsafeSysctls names them (exactly, or by a prefix ending in *); a
namespaced net.* sysctl is refused for a hostNetwork pod and an IPC one for a hostIPC pod,
since it would change the host's. A refused pod ends Failed with reason SysctlForbidden."""
from __future__ import annotations

from kubelet.pods import Pod

FORBIDDEN_REASON = "SysctlForbidden"

# The kubelet's safe sysctls: namespaced, and isolated from the other pods.
SAFE = ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes")

# The IPC namespace's sysctls (the rest of the namespaced ones are net.*).
_IPC = ("kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem")


def _normalize(name: str) -> str:
    """Sysctls may be written with / as the separator (net/ipv4/tcp_syncookies)."""
    return name.replace("/", ".") if "/" in name and "." not in name.split("/")[0] else name


def _allowed(name: str, allowed_unsafe: list[str]) -> bool:
    if name in SAFE:
        return True
    return any(name == a or (a.endswith("*") and name.startswith(a[:-1]))
               for a in allowed_unsafe)


def forbidden(pod: Pod, allowed_unsafe: list[str]) -> str:
    """"" if the pod's sysctls may be set here, else the kubelet's message."""
    for s in pod.security_context.get("sysctls") or []:
        name = _normalize(str(s.get("name", "")))
        if not _allowed(name, allowed_unsafe):
            return f'forbidden sysctl: "{name}" not allowlisted'
        if name.startswith("net.") and pod.host_network:
            return f'forbidden sysctl: "{name}" not allowed with host net enabled'
        if (name in _IPC or name.startswith("fs.mqueue.")) and pod.host_ipc:
            return f'forbidden sysctl: "{name}" not allowed with host ipc enabled'
    return ""
