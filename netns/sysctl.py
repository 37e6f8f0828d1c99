"""Sysctls of the calling thread's network namespace (/proc/sys/net follows the thread that
opens it, so wrap these in enter.run_in_netns to reach a pod)."""
from __future__ import annotations


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/") if "/" not in key else "/proc/sys/" + key


def read(key: str) -> str:
    """Reads a sysctl by dotted name ('net.ipv4.ip_forward')."""
    with open(_path(key)) as f:
        return f.read().strip()


def write(key: str, value: str) -> str:
    """Writes a sysctl and returns the previous value, so that a caller can restore it."""
    path = _path(key)
    with open(path, "r+") as f:
        old = f.read().strip()
        if old != value:
            f.seek(0)
            f.write(value)
    return old


def interface_key(family: str, ifname: str, name: str) -> str:
    """The key of a per-interface sysctl, e.g. ('ipv4', 'br0', 'route_localnet'). The name goes
    in with '/'-separated parts because interface names may contain dots."""
    return f"net/{family}/conf/{ifname}/{name}"


def enable_ip_forward(family: str = "ipv4") -> str:
    """Turns on routing between interfaces; returns the previous value."""
    if family == "ipv6":
        return write("net/ipv6/conf/all/forwarding", "1")
    return write("net/ipv4/ip_forward", "1")


def enable_route_localnet(ifname: str) -> str:
    """Lets 127.0.0.0/8 sources be routed out of `ifname` (host port reached via localhost)."""
    return write(interface_key("ipv4", ifname, "route_localnet"), "1")
