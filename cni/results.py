"""Reading the parts of a CNI result (prevResult) that chained plugins need."""
from __future__ import annotations

from .errors import invalid_config


def prev_result(conf: dict, required: bool, plugin: str) -> dict | None:
    prev = conf.get("prevResult")
    if prev is None:
        if required:
            raise invalid_config(f"{plugin}: missing prevResult (must be called as a chained "
                                 "plugin)")
        return None
    if not isinstance(prev, dict):
        raise invalid_config(f"{plugin}: prevResult is not an object")
    return prev


def sandbox_ips(result: dict) -> list[str]:
    """Addresses ('ip/prefix') that the result puts inside the container."""
    interfaces = result.get("interfaces") or []
    out = []
    for ip in result.get("ips") or []:
        index = ip.get("interface")
        if index is None or (0 <= index < len(interfaces) and interfaces[index].get("sandbox")):
            out.append(ip["address"])
    return out


def host_interfaces(result: dict) -> list[str]:
    return [i["name"] for i in result.get("interfaces") or [] if not i.get("sandbox")]
