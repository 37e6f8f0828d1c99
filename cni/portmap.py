"""pycni-portmap: a chained plugin that forwards host ports to the container (runtimeConfig
portMappings), also from the host itself and through 127.0.0.1, with NAT rules that DEL removes
exactly (see netns/nat.py)."""
from __future__ import annotations

import ipaddress

from netns import links, nat, nat_backend, routes, sysctl
from netns.rtnl import RtnlSocket

from . import skel, version
from .errors import INTERNAL, UNSUPPORTED_FIELD, CNIError, invalid_config
from .results import prev_result, sandbox_ips

PROTOCOLS = ("tcp", "udp", "sctp")
# Options of the reference portmap that we do not implement: refused rather than ignored.
_UNSUPPORTED = ("conditionsV4", "conditionsV6", "masqAll", "markMasqBit",
                "externalSetMarkChain")


def _mappings(conf: dict) -> list[nat.PortMapping]:
    for key in _UNSUPPORTED:
        if conf.get(key):
            raise CNIError(UNSUPPORTED_FIELD, f"unsupported field {key}={conf[key]!r}")
    raw = (conf.get("runtimeConfig") or {}).get("portMappings") or []
    if not isinstance(raw, list):
        raise invalid_config("runtimeConfig.portMappings: must be a list")
    out = []
    for i, m in enumerate(raw):
        where = f"runtimeConfig.portMappings[{i}]"
        if not isinstance(m, dict):
            raise invalid_config(f"{where}: must be an object")
        for key in ("hostPort", "containerPort"):
            port = m.get(key)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise invalid_config(f"{where}.{key}: {port!r} is not a port (1-65535)")
        protocol = (m.get("protocol") or "tcp").lower()
        if protocol not in PROTOCOLS:
            raise invalid_config(f"{where}.protocol: {protocol!r} is not tcp, udp or sctp")
        host_ip = m.get("hostIP") or ""
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise invalid_config(f"{where}.hostIP: {host_ip!r} is not an IP address") \
                    from None
        out.append(nat.PortMapping(m["hostPort"], m["containerPort"], protocol, host_ip))
    return out


def _backend(conf: dict):
    choice = conf.get("backend") or ""
    if choice not in ("", "nftables", "iptables"):
        raise invalid_config(f"backend: {choice!r} is not nftables or iptables")
    return nat_backend.host_backend(choice)


def _name(conf: dict, args: skel.Args) -> str:
    return nat.rule_set_name("hp", conf["name"], args.container_id, args.ifname)


def _snat(conf: dict) -> bool:
    value = conf.get("snat", True)
    if not isinstance(value, bool):
        raise invalid_config(f"snat: must be true or false, not {value!r}")
    return value


def _pod_ips(prev: dict) -> list[str]:
    """The container's first IPv4 and first IPv6 address."""
    chosen: dict[int, str] = {}
    for cidr in sandbox_ips(prev):
        ip = ipaddress.ip_interface(cidr).ip
        chosen.setdefault(ip.version, str(ip))
    return list(chosen.values())


def add(args: skel.Args, conf: dict) -> dict:
    mappings = _mappings(conf)
    snat = _snat(conf)
    prev = prev_result(conf, required=True, plugin="portmap")
    backend = _backend(conf)
    if not mappings:
        return prev
    pod_ips = _pod_ips(version.convert_result(prev, "1.0.0"))
    if not pod_ips:
        raise CNIError(INTERNAL, "portmap: prevResult has no container IP to forward to")
    if snat:
        v4 = [ip for ip in pod_ips if ":" not in ip]
        if v4:
            with RtnlSocket() as host:
                route = routes.route_get(host, v4[0])
                link = links.get_link_by_index(host, route.oif) if route and route.oif else None
            if link is not None:
                # 127.0.0.1 -> pod crosses a routing boundary only with route_localnet.
                sysctl.enable_route_localnet(link.name)
    backend.add_port_forward(_name(conf, args), f"net={conf['name']} id={args.container_id} "
                             f"if={args.ifname}", pod_ips, mappings, snat)
    return prev


def delete(args: skel.Args, conf: dict) -> None:
    _backend(conf).delete(_name(conf, args))


def check(args: skel.Args, conf: dict) -> None:
    prev_result(conf, required=True, plugin="portmap")
    if _mappings(conf) and not _backend(conf).exists(_name(conf, args)):
        raise CNIError(INTERNAL, "portmap: the port forwarding rules are missing")


def gc(args: skel.Args, conf: dict) -> None:
    backend = _backend(conf)
    valid = {nat.rule_set_name("hp", conf["name"], a.get("containerID", ""), a.get("ifname", ""))
             for a in conf.get("cni.dev/valid-attachments") or []}
    for name in backend.names(nat.network_prefix("hp", conf["name"])):
        if name not in valid:
            backend.delete(name)


HANDLERS = {"ADD": add, "DEL": delete, "CHECK": check, "GC": gc}

