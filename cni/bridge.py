"""pycni-bridge: puts the container on a host bridge through a veth pair. The bridge is created
on first use (optionally as the pods' gateway, with forwarding on and masquerade of their
traffic out of the subnet); addresses come from the IPAM plugin named in the config, run as the
spec's delegation says."""
from __future__ import annotations

import ipaddress

from netns import addresses, bridge_port, links, nat, nat_backend, routes, sysctl
from netns.rtnl import RtnlSocket, raise_first

from . import sandbox, skel, version
from .errors import INTERNAL, UNSUPPORTED_FIELD, CNIError, invalid_config
from .results import prev_result

DEFAULT_BRIDGE = "cni0"
# Fields of the reference bridge plugin that we do not implement: refusing them beats silently
# doing something else.
_UNSUPPORTED = ("vlan", "vlanTrunk", "macspoofchk", "disableContainerInterface",
                "portIsolation")


def _bool(conf: dict, key: str) -> bool:
    value = conf.get(key, False)
    if not isinstance(value, bool):
        raise invalid_config(f"{key}: must be true or false, not {value!r}")
    return value


class BridgeConfig:
    __slots__ = ("bridge", "is_gateway", "is_default_gateway", "force_address", "ip_masq",
                 "masq_backend", "mtu", "hairpin", "promisc", "ipam_type", "dns")

    def __init__(self, conf: dict) -> None:
        for key in _UNSUPPORTED:
            if conf.get(key):
                raise CNIError(UNSUPPORTED_FIELD, f"unsupported field {key}={conf[key]!r}")
        self.bridge = conf.get("bridge") or DEFAULT_BRIDGE
        try:
            links.check_name(self.bridge)
        except (ValueError, TypeError) as exc:
            raise invalid_config(f"bridge: {exc}") from None
        self.is_default_gateway = _bool(conf, "isDefaultGateway")
        self.is_gateway = _bool(conf, "isGateway") or self.is_default_gateway
        self.force_address = _bool(conf, "forceAddress")
        self.ip_masq = _bool(conf, "ipMasq")
        self.masq_backend = conf.get("ipMasqBackend") or ""
        if self.masq_backend not in ("", "nftables", "iptables"):
            raise invalid_config(f"ipMasqBackend: {self.masq_backend!r} is not nftables or "
                                 "iptables")
        self.mtu = conf.get("mtu", 0) or 0
        if not isinstance(self.mtu, int) or not (self.mtu == 0 or 68 <= self.mtu <= 65535):
            raise invalid_config(f"mtu: {self.mtu!r} is not a valid MTU (68-65535)")
        self.hairpin = _bool(conf, "hairpinMode")
        self.promisc = _bool(conf, "promiscMode")
        if self.hairpin and self.promisc:
            raise invalid_config("cannot set hairpinMode and promiscMode at the same time")
        ipam = conf.get("ipam") or {}
        if not isinstance(ipam, dict):
            raise invalid_config("ipam: must be an object")
        self.ipam_type = ipam.get("type") or ""
        self.dns = conf.get("dns") or {}


def _masq_name(conf: dict, args: skel.Args) -> str:
    return nat.rule_set_name("mq", conf["name"], args.container_id, args.ifname)


def _owner(conf: dict, args: skel.Args) -> str:
    return f"net={conf['name']} id={args.container_id} if={args.ifname}"


def _create_veth(host: RtnlSocket, sb: sandbox.Sandbox, ifname: str, mtu: int,
                 bridge: links.Link) -> links.Link:
    """The host side, made on the bridge and up in the veth's own request."""
    for _ in range(5):  # a random host-side name can collide: pick another
        name = links.random_veth_name()
        try:
            return links.create_veth(host, name, ifname, sb.fd, mtu, master=bridge.index,
                                     up=True)
        except FileExistsError:
            if links.get_link(sb.rtnl, ifname) is not None:
                raise CNIError(INTERNAL, f"container interface {ifname} already exists") from None
    raise CNIError(INTERNAL, "could not find a free host-side veth name")


def _gateways(result: dict, cfg: BridgeConfig) -> list[str]:
    """Fills in gateways and the default routes the config asks for; returns the gateway
    addresses ('ip/prefix') the bridge must carry."""
    bridge_addresses = []
    default_done = {4: False, 6: False}
    routes_ = result.setdefault("routes", [])
    for route in routes_:
        if route.get("gw") and ipaddress.ip_network(route["dst"], strict=False).prefixlen == 0:
            default_done[ipaddress.ip_network(route["dst"], strict=False).version] = True
    for ip in result["ips"]:
        ip["interface"] = 2
        iface = ipaddress.ip_interface(ip["address"])
        if not ip.get("gateway") and cfg.is_gateway:
            ip["gateway"] = str(iface.network.network_address + 1)
        if cfg.is_default_gateway and not default_done[iface.version]:
            routes_.append({"dst": "0.0.0.0/0" if iface.version == 4 else "::/0",
                            "gw": ip["gateway"]})
            default_done[iface.version] = True
        if cfg.is_gateway:
            bridge_addresses.append(f"{ip['gateway']}/{iface.network.prefixlen}")
    if not routes_:
        del result["routes"]
    return bridge_addresses


def _configure_container(sb: sandbox.Sandbox, link: links.Link, result: dict) -> None:
    """Its sysctls, addresses, up, routes: one netlink round trip (IPv6's accept_dad aside, which
    rtnetlink cannot set)."""
    if any(":" in ip["address"] for ip in result["ips"]):
        # Addresses are unique by IPAM: skip duplicate address detection delays.
        sb.run(sysctl.write, sysctl.interface_key("ipv6", link.name, "accept_dad"), "0")
    messages = [links.set_message(
        link.index, links.ipv4_conf({links.IPV4_DEVCONF_ARP_NOTIFY: 1}))]
    messages += [addresses.add_message(link.index, ip["address"]) for ip in result["ips"]]
    messages.append(links.set_message(link.index, flags=links.IFF_UP, change=links.IFF_UP))
    first_route = len(messages)
    gateways = {ipaddress.ip_interface(ip["address"]).version: ip.get("gateway")
                for ip in result["ips"]}
    for route in result.get("routes") or []:
        family = ipaddress.ip_network(route["dst"], strict=False).version
        gw = route.get("gw") or gateways.get(family) or ""
        messages.append(routes.add_message(
            route["dst"], gw, oif=link.index, mtu=route.get("mtu", 0),
            advmss=route.get("advmss", 0), priority=route.get("priority", 0),
            table=route.get("table", 0)))
    for i, outcome in enumerate(sb.rtnl.batch(messages)):
        if isinstance(outcome, OSError) and not (
                i >= first_route and isinstance(outcome, FileExistsError)):
            raise outcome


def _bridge_mac(host: RtnlSocket, bridge: links.Link, wanted: list[str], force: bool) -> str:
    """The bridge's MAC once it carries the `wanted` addresses: it follows its ports' until it
    has one, so it is read after them (in the same round trip when they are there already)."""
    listed, got = raise_first(host.batch([addresses.list_message(bridge.index),
                                          links.get_message(bridge.name)]))
    present = addresses.addresses_of(listed, bridge.index)
    missing = [cidr for cidr in wanted if cidr not in present]
    if not missing:
        return links.Link(got[0]).mac
    for cidr in missing:
        net = ipaddress.ip_interface(cidr).network
        clash = [a for a in present if ipaddress.ip_interface(a).network == net]
        if clash and not force:
            raise CNIError(INTERNAL, f"bridge {bridge.name} already has {clash[0]} in {net}; "
                           f"set forceAddress to replace it with {cidr}")
        for old in clash:
            addresses.delete_address(host, bridge.index, old)
        addresses.add_address(host, bridge.index, cidr, exist_ok=True)
    return links.get_link(host, bridge.name).mac


def add(args: skel.Args, conf: dict) -> dict:
    cfg = BridgeConfig(conf)
    with sandbox.Sandbox(args.netns) as sb, RtnlSocket() as host:
        if links.get_link(sb.rtnl, args.ifname) is not None:
            raise CNIError(INTERNAL, f"container interface {args.ifname} already exists in "
                           f"{args.netns}")
        bridge = links.create_bridge(host, cfg.bridge, cfg.mtu)
        if cfg.promisc:
            links.set_promisc(host, bridge.index, True)
        if not bridge.up:
            links.set_up(host, bridge.index)
        host_name = ""
        ipam_done = masq_done = False
        try:
            host_veth = _create_veth(host, sb, args.ifname, cfg.mtu, bridge)
            host_name = host_veth.name
            if cfg.hairpin:     # a new port's is off
                bridge_port.set_hairpin(host_name, True)
            container = links.get_link(sb.rtnl, args.ifname)
            result = {"cniVersion": conf["cniVersion"], "interfaces": [
                {"name": bridge.name, "mac": bridge.mac},
                {"name": host_name, "mac": host_veth.mac},
                {"name": args.ifname, "mac": container.mac, "sandbox": args.netns}]}
            if cfg.ipam_type:
                try:
                    ipam = args.delegate(cfg.ipam_type, "ADD") or {}
                finally:
                    ipam_done = True  # a failed ADD may have half-allocated: DEL it below
                ipam = version.convert_result(ipam, "1.0.0")
                if not ipam.get("ips"):
                    raise CNIError(INTERNAL, "IPAM plugin returned missing IP config")
                result["ips"] = ipam["ips"]
                if ipam.get("routes"):
                    result["routes"] = ipam["routes"]
                if ipam.get("dns"):
                    result["dns"] = ipam["dns"]
                gateway_addresses = _gateways(result, cfg)
                _configure_container(sb, container, result)
                result["interfaces"][0]["mac"] = _bridge_mac(
                    host, bridge, gateway_addresses if cfg.is_gateway else [],
                    cfg.force_address)
                if cfg.is_gateway:
                    for family in {6 if ":" in a else 4 for a in gateway_addresses}:
                        sysctl.enable_ip_forward("ipv6" if family == 6 else "ipv4")
                if cfg.ip_masq:
                    masq_done = True
                    nat_backend.host_backend(cfg.masq_backend).add_masquerade(
                        _masq_name(conf, args), _owner(conf, args),
                        [nat.Masquerade(ip["address"]) for ip in result["ips"]])
            else:
                links.set_up(sb.rtnl, container.index)
                result["interfaces"][0]["mac"] = links.get_link(host, bridge.name).mac
            if cfg.dns:
                result["dns"] = cfg.dns
            return result
        except BaseException:
            if masq_done:
                nat_backend.host_backend(cfg.masq_backend).delete(_masq_name(conf, args))
            if ipam_done:
                try:
                    args.delegate(cfg.ipam_type, "DEL")
                except CNIError:
                    pass  # the ADD error is the one to report
            leftover = links.get_link(host, host_name) if host_name else None
            if leftover is not None:
                links.delete_link(host, leftover.index)  # takes the container end with it
            if bridge.created and not links.ports_of(host, bridge.index):
                links.delete_link(host, bridge.index)  # made for this ADD and unused: undo
            raise


def delete(args: skel.Args, conf: dict) -> None:
    cfg = BridgeConfig(conf)
    if sandbox.exists(args.netns):
        with sandbox.Sandbox(args.netns) as sb:
            link = links.get_link(sb.rtnl, args.ifname)
            if link is not None:
                links.delete_link(sb.rtnl, link.index)  # its host-side peer goes with it
    if cfg.ipam_type:
        args.delegate(cfg.ipam_type, "DEL")
    if cfg.ip_masq:
        nat_backend.host_backend(cfg.masq_backend).delete(_masq_name(conf, args))


def check(args: skel.Args, conf: dict) -> None:
    cfg = BridgeConfig(conf)
    prev = prev_result(conf, required=True, plugin="bridge")
    prev = version.convert_result(prev, "1.0.0")
    with RtnlSocket() as host:
        bridge = links.get_link(host, cfg.bridge)
        if bridge is None or bridge.kind != "bridge":
            raise CNIError(INTERNAL, f"bridge {cfg.bridge} is missing")
        ports = {link.name for link in links.ports_of(host, bridge.index)}
    interfaces = prev.get("interfaces") or []
    if not any(i.get("name") in ports for i in interfaces if not i.get("sandbox")):
        raise CNIError(INTERNAL, f"no host-side veth of {args.container_id} on {cfg.bridge}")
    with sandbox.Sandbox(args.netns) as sb:
        link = links.get_link(sb.rtnl, args.ifname)
        if link is None:
            raise CNIError(INTERNAL, f"container interface {args.ifname} is missing")
        present = addresses.list_addresses(sb.rtnl, link.index)
    for ip in prev.get("ips") or []:
        if ip["address"] not in present:
            raise CNIError(INTERNAL, f"address {ip['address']} missing on {args.ifname}")
    if cfg.ipam_type:
        args.delegate(cfg.ipam_type, "CHECK")
    if cfg.ip_masq and not nat_backend.host_backend(cfg.masq_backend).exists(
            _masq_name(conf, args)):
        raise CNIError(INTERNAL, "masquerade rules are missing")


def gc(args: skel.Args, conf: dict) -> None:
    cfg = BridgeConfig(conf)
    if cfg.ipam_type:
        args.delegate(cfg.ipam_type, "GC")
    if cfg.ip_masq:
        backend = nat_backend.host_backend(cfg.masq_backend)
        valid = {nat.rule_set_name("mq", conf["name"], a.get("containerID", ""),
                                   a.get("ifname", ""))
                 for a in conf.get("cni.dev/valid-attachments") or []}
        for name in backend.names(nat.network_prefix("mq", conf["name"])):
            if name not in valid:
                backend.delete(name)


def status(args: skel.Args, conf: dict) -> None:
    cfg = BridgeConfig(conf)
    if cfg.ipam_type:
        args.delegate(cfg.ipam_type, "STATUS")


HANDLERS = {"ADD": add, "DEL": delete, "CHECK": check, "GC": gc, "STATUS": status}

