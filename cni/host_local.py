"""pycni-host-local: the host-local IPAM plugin. Hands out addresses from the configured range
sets, one per set, records them in the data dir (see ipam_store.py) and releases them on DEL;
a second ADD for the same container and interface is refused, as the spec asks."""
from __future__ import annotations

import ipaddress

from . import skel
from .errors import INTERNAL, NOT_AVAILABLE, CNIError, invalid_config
from .ipam_ranges import RangeSet
from .ipam_store import Store


class IpamConfig:
    __slots__ = ("name", "range_sets", "routes", "data_dir", "dns", "requested")

    def __init__(self, conf: dict, args: skel.Args) -> None:
        ipam = conf.get("ipam")
        if not isinstance(ipam, dict):
            raise invalid_config("IPAM config missing 'ipam' key")
        self.name: str = conf["name"]
        runtime = conf.get("runtimeConfig") or {}
        specs = list(runtime.get("ipRanges") or [])
        if ipam.get("subnet"):  # the single-range form of older configs
            specs.append([{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway")
                           if k in ipam}])
        ranges = ipam.get("ranges") or []
        if not isinstance(ranges, list):
            raise invalid_config("ipam.ranges: must be a list of range sets")
        specs.extend(ranges)
        if not specs:
            raise invalid_config("ipam: no IP ranges specified")
        self.range_sets = [RangeSet(s, f"ipam.ranges[{i}]") for i, s in enumerate(specs)]
        for i, a in enumerate(self.range_sets):
            for j, b in enumerate(self.range_sets[i + 1:], i + 1):
                if a.overlaps(b):
                    raise invalid_config(f"ipam.ranges: range set {i} overlaps with {j}")
        self.routes = _routes(ipam.get("routes"))
        self.data_dir = ipam.get("dataDir") or ""
        if not isinstance(self.data_dir, str):
            raise invalid_config("ipam.dataDir: must be a string")
        self.dns = _resolv_conf(ipam["resolvConf"]) if ipam.get("resolvConf") else None
        self.requested = _requested_ips(conf, args)


def _routes(routes) -> list[dict]:
    if routes is None:
        return []
    if not isinstance(routes, list):
        raise invalid_config("ipam.routes: must be a list")
    out = []
    for i, route in enumerate(routes):
        if not isinstance(route, dict) or not isinstance(route.get("dst"), str):
            raise invalid_config(f"ipam.routes[{i}].dst: missing or not a string")
        try:
            ipaddress.ip_network(route["dst"], strict=False)
            if route.get("gw"):
                ipaddress.ip_address(route["gw"])
        except ValueError as exc:
            raise invalid_config(f"ipam.routes[{i}]: {exc}") from None
        out.append(route)
    return out


def _requested_ips(conf: dict, args: skel.Args) -> list:
    wanted = []
    if args.args:
        ip = args.cni_args().get("IP")
        if ip:
            wanted.append(ip)
    wanted += ((conf.get("args") or {}).get("cni") or {}).get("ips") or []
    wanted += (conf.get("runtimeConfig") or {}).get("ips") or []
    try:
        return [ipaddress.ip_interface(w).ip for w in wanted]
    except ValueError as exc:
        raise invalid_config(f"requested IP: {exc}") from None


def _resolv_conf(path: str) -> dict:
    dns: dict = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise invalid_config(f"ipam.resolvConf: {exc}") from None
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver":
            dns.setdefault("nameservers", []).append(fields[1])
        elif fields[0] == "domain":
            dns["domain"] = fields[1]
        elif fields[0] == "search":
            dns["search"] = fields[1:]
        elif fields[0] == "options":
            dns.setdefault("options", []).extend(fields[1:])
    return dns


def _allocate(store: Store, index: int, range_set: RangeSet, args: skel.Args, requested):
    if requested is not None:
        r = range_set.range_for(requested)
        if requested == r.gateway:
            raise CNIError(INTERNAL, f"requested ip {requested} is subnet's gateway")
        if not store.reserve(args.container_id, args.ifname, requested, index):
            raise CNIError(INTERNAL, f"requested IP address {requested} is not "
                           f"available in range set {range_set}")
        return requested, r
    for address, r in range_set.candidates(store.last_reserved(index)):
        if store.reserve(args.container_id, args.ifname, address, index):
            return address, r
    raise CNIError(INTERNAL, f"no IP addresses available in range set: {range_set}")


def _refuse_duplicate(store: Store, args: skel.Args, taken: list, range_sets: list) -> None:
    """An address the container and interface held already in a range set it was just given
    one of by its order (not by request) makes the ADD a duplicate. Checked once the lock is
    released, as it reads every allocation file: 100 ADDs at once in the kubelet's process
    would wait for each other's reads otherwise. Two duplicates at once both fail."""
    for held in store.find(args.container_id, args.ifname):
        if held not in taken and any(rs.range_for(held) for rs in range_sets):
            raise CNIError(INTERNAL, f"{held} has been allocated to {args.container_id}, "
                           "duplicate allocation is not allowed")


def add(args: skel.Args, conf: dict) -> dict:
    cfg = IpamConfig(conf, args)
    requested = list(cfg.requested)
    ips, taken, by_order = [], [], []
    store = Store(cfg.name, cfg.data_dir)
    try:
        with store:
            for index, range_set in enumerate(cfg.range_sets):
                mine = next((ip for ip in requested if range_set.range_for(ip)), None)
                if mine is not None:
                    requested.remove(mine)
                else:
                    by_order.append(range_set)
                address, r = _allocate(store, index, range_set, args, mine)
                taken.append(address)
                ips.append({"address": f"{address}/{r.subnet.prefixlen}",
                            "gateway": str(r.gateway)})
            if requested:
                raise CNIError(INTERNAL, "failed to allocate all requested IPs: "
                               + " ".join(str(ip) for ip in requested))
        _refuse_duplicate(store, args, taken, by_order)
    except BaseException:
        if taken:
            with store:
                for address in taken:
                    store.release(address)
        raise
    result = {"cniVersion": conf["cniVersion"], "ips": ips}
    if cfg.routes:
        result["routes"] = cfg.routes
    if cfg.dns:
        result["dns"] = cfg.dns
    return result


def delete(args: skel.Args, conf: dict) -> None:
    cfg = IpamConfig(conf, args)
    with Store(cfg.name, cfg.data_dir) as store:
        for address in store.find(args.container_id, args.ifname):
            store.release(address)


def check(args: skel.Args, conf: dict) -> None:
    cfg = IpamConfig(conf, args)
    with Store(cfg.name, cfg.data_dir) as store:
        if not store.find(args.container_id, args.ifname):
            raise CNIError(INTERNAL, f"host-local: failed to find address added by container "
                           f"{args.container_id}")


def gc(args: skel.Args, conf: dict) -> None:
    cfg = IpamConfig(conf, args)
    valid = {(a.get("containerID"), a.get("ifname"))
             for a in conf.get("cni.dev/valid-attachments") or []}
    with Store(cfg.name, cfg.data_dir) as store:
        for address, (cid, ifname) in store.allocations().items():
            if (cid, ifname) not in valid and not (ifname == "" and any(
                    v[0] == cid for v in valid)):
                store.release(address)


def status(args: skel.Args, conf: dict) -> None:
    cfg = IpamConfig(conf, args)
    with Store(cfg.name, cfg.data_dir) as store:
        held = list(store.allocations())
    for range_set in cfg.range_sets:
        used = sum(1 for a in held if range_set.range_for(a))
        if used >= range_set.capacity():
            raise CNIError(NOT_AVAILABLE, f"no IP addresses available in range set {range_set}")


HANDLERS = {"ADD": add, "DEL": delete, "CHECK": check, "GC": gc, "STATUS": status}

