"""v1 Services: defaults (SetDefaults_Service and the registry's), validation (ValidateService,
ValidateServiceUpdate) and the store that allocates ClusterIPs and NodePorts as kube-apiserver's
service REST does: after validation, before the write, given back on delete or a failed write."""
from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable

from kubeapi import validation
from kubeapi.status import (ApiError, duplicate, field_error, forbidden_field, invalid_value,
                            not_supported, required)

from ..ipalloc import IPAllocator
from ..portalloc import PortAllocator
from ..rangealloc import AllocationError, StoredRange
from .store import Store
from .strategy import Strategy

TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
DEFAULT_AFFINITY_TIMEOUT = 10800
MAX_AFFINITY_TIMEOUT = 86400
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
               "with an alphabetic character, and end with an alphanumeric character (e.g. "
               "'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')")


def _shown(value: object) -> str:
    """A value as kube's field errors print it (JSON: ["1.2.3.4"], 30080, "x")."""
    return json.dumps(value, separators=(",", ":"))


def _invalid(field: str, value: object, detail: str) -> dict:
    return field_error("FieldValueInvalid", field, f"Invalid value: {_shown(value)}: {detail}")


def dns1035_label(value: str, field: str) -> list[dict]:
    if not isinstance(value, str) or not _DNS1035_LABEL.match(value):
        return [invalid_value(field, value, DNS1035_MSG)]
    if len(value) > 63:
        return [invalid_value(field, value, "must be no more than 63 characters")]
    return []


def _is_ip(value: object) -> bool:
    try:
        ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return isinstance(value, str)


def needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def needs_node_ports(spec: dict) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True)


def needs_health_check_port(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _drop_type_dependent(spec: dict, old_spec: dict) -> None:
    """A type change clears what only the old type allocated and the client sent back
    unchanged (kube's dropTypeDependentFields), so that `type: ExternalName` or `type:
    ClusterIP` in an apply needs no other edit."""
    kind, old_kind = spec.get("type", "ClusterIP"), old_spec.get("type", "ClusterIP")
    if kind == old_kind:
        return
    if kind == "ExternalName" and spec.get("clusterIP") == old_spec.get("clusterIP"):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                    "internalTrafficPolicy"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if needs_node_ports(old_spec) and not needs_node_ports(spec):
        old_ports = {p.get("nodePort") for p in old_spec.get("ports") or []
                     if isinstance(p, dict)}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort") in old_ports:
                port.pop("nodePort", None)
    if kind not in ("NodePort", "LoadBalancer") and \
            spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if not needs_health_check_port(spec) and \
            spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if kind != "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") == \
            old_spec.get("allocateLoadBalancerNodePorts"):
        spec.pop("allocateLoadBalancerNodePorts", None)


class ServiceStrategy(Strategy):
    kind = "Service"
    has_status = True
    field_labels = frozenset({"metadata.name", "metadata.namespace", "spec.clusterIP",
                              "spec.type"})

    def name_errors(self, name: str, field: str) -> list[dict]:
        return dns1035_label(name, field)

    def default(self, obj: dict) -> None:
        if obj.get("spec") is None:
            obj["spec"] = {}
        spec = obj["spec"]
        if not isinstance(spec, dict):
            return  # validation names it
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        kind = spec["type"]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if port.get("targetPort") in (None, 0, ""):
                    port["targetPort"] = port.get("port")
        if spec["sessionAffinity"] == "ClientIP":
            cfg = spec.setdefault("sessionAffinityConfig", {}) or {}
            client_ip = cfg.setdefault("clientIP", {}) or {}
            client_ip.setdefault("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT)
            cfg["clientIP"], spec["sessionAffinityConfig"] = client_ip, cfg
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if kind != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            if spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            if spec.get("clusterIPs") and not spec.get("clusterIP"):
                spec["clusterIP"] = spec["clusterIPs"][0]
            if spec.get("clusterIP") == "None" and not spec.get("selector"):
                # Headless and selectorless: its endpoints may be of either family, so kube
                # gives it both (initIPFamilyFields).
                spec.setdefault("ipFamilyPolicy", "RequireDualStack")
                if not spec.get("ipFamilies") and spec["ipFamilyPolicy"] == "RequireDualStack":
                    spec["ipFamilies"] = ["IPv4", "IPv6"]
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            if not spec.get("ipFamilies"):
                first = (spec.get("clusterIPs") or [""])[0]
                v6 = _is_ip(first) and ipaddress.ip_address(first).version == 6
                spec["ipFamilies"] = ["IPv6" if v6 else "IPv4"]
        if not isinstance(obj.get("status"), dict):
            obj["status"] = {"loadBalancer": {}}

    def prepare_create(self, obj: dict) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_update(self, new: dict, old: dict) -> dict:
        """What an update leaves out keeps what was allocated (kube's patchAllocatedValues), and
        a changed clusterIP speaks for clusterIPs (normalizeClusterIPs)."""
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if not isinstance(spec, dict):
            return new
        _drop_type_dependent(spec, old_spec)
        if spec.get("type", "ClusterIP") == "ExternalName":
            return new
        if spec.get("clusterIP") != old_spec.get("clusterIP") and \
                spec.get("clusterIPs") == old_spec.get("clusterIPs") and spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if not spec.get("clusterIP") and not spec.get("clusterIPs") and \
                old_spec.get("clusterIP") and old_spec.get("type") != "ExternalName":
            spec["clusterIP"] = old_spec["clusterIP"]
            spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
        if needs_node_ports(spec) and needs_node_ports(old_spec):
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports") or [] if isinstance(p, dict)}
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    kept = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if kept:
                        port["nodePort"] = kept
        if needs_health_check_port(spec) and not spec.get("healthCheckNodePort") and \
                old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
        return new

    def validate(self, obj: dict) -> list[dict]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        errors: list[dict] = []
        kind = spec.get("type")
        if kind not in TYPES:
            errors.append(not_supported("spec.type", kind, list(TYPES)))
        errors += self._cluster_ips(spec)
        errors += self._ports(spec)
        if kind == "ExternalName":
            name = spec.get("externalName")
            if not name:
                errors.append(required("spec.externalName"))
            else:
                errors += validation.dns1123_subdomain(name.rstrip("."), "spec.externalName")
        elif spec.get("externalName"):
            errors.append(forbidden_field("spec.externalName",
                                          "may only be set when `type` is 'ExternalName'"))
        if spec.get("clusterIP") == "None" and kind in ("NodePort", "LoadBalancer"):
            errors.append(invalid_value("spec.clusterIPs[0]", "None",
                                        f"may not be set to 'None' for {kind} services"))
        affinity = spec.get("sessionAffinity")
        if affinity not in AFFINITIES:
            errors.append(not_supported("spec.sessionAffinity", affinity, list(AFFINITIES)))
        elif affinity == "ClientIP":
            timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                       .get("timeoutSeconds"))
            if not isinstance(timeout, int) or not 0 < timeout <= MAX_AFFINITY_TIMEOUT:
                errors.append(invalid_value(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                    f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}"))
        elif spec.get("sessionAffinityConfig"):
            errors.append(forbidden_field("spec.sessionAffinityConfig",
                                          "must not be set when session affinity is None"))
        errors += self._policies(spec)
        selector = spec.get("selector")
        errors += validation.labels(selector, "spec.selector")
        for i, ip in enumerate(spec.get("externalIPs") or []):
            if not _is_ip(ip):
                errors.append(invalid_value(f"spec.externalIPs[{i}]", ip,
                                            "must be a valid IP address"))
        if not isinstance(spec.get("publishNotReadyAddresses", False), bool):
            errors.append(invalid_value("spec.publishNotReadyAddresses",
                                        spec["publishNotReadyAddresses"], "must be a boolean"))
        return errors

    @staticmethod
    def _cluster_ips(spec: dict) -> list[dict]:
        if spec.get("type") == "ExternalName":
            if spec.get("clusterIP"):
                return [forbidden_field("spec.clusterIP",
                                        "may not be set for ExternalName services")]
            return []
        errors = []
        ips = spec.get("clusterIPs") or []
        if not isinstance(ips, list) or len(ips) > 1:
            return [invalid_value("spec.clusterIPs", ips, "may specify no more than one IP "
                                  "for each IP family")]
        for i, ip in enumerate(ips):
            if ip != "None" and not _is_ip(ip):
                errors.append(invalid_value(f"spec.clusterIPs[{i}]", ip,
                                            "must be a valid IP address, (e.g. 10.9.8.7 or "
                                            "2001:db8::ffff)"))
        if ips and spec.get("clusterIP") != ips[0]:
            errors.append(invalid_value("spec.clusterIPs", ips, "must match `clusterIP`"))
        families = spec.get("ipFamilies") or []
        for i, fam in enumerate(families):
            if fam not in ("IPv4", "IPv6"):
                errors.append(not_supported(f"spec.ipFamilies[{i}]", fam, ["IPv4", "IPv6"]))
        policy = spec.get("ipFamilyPolicy")
        if policy not in IP_FAMILY_POLICIES:
            errors.append(not_supported("spec.ipFamilyPolicy", policy, list(IP_FAMILY_POLICIES)))
        return errors

    @staticmethod
    def _ports(spec: dict) -> list[dict]:
        ports = spec.get("ports") or []
        kind = spec.get("type")
        errors: list[dict] = []
        if not isinstance(ports, list):
            return [invalid_value("spec.ports", ports, "must be a list")]
        if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
            errors.append(required("spec.ports"))
        names: set[str] = set()
        seen: set[tuple] = set()
        for i, port in enumerate(ports):
            path = f"spec.ports[{i}]"
            if not isinstance(port, dict):
                errors.append(invalid_value(path, port, "must be an object"))
                continue
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                errors.append(required(f"{path}.name"))
            elif name:
                errors += validation.dns1123_label(name, f"{path}.name")
                if name in names:
                    errors.append(duplicate(f"{path}.name", name))
                names.add(name)
            number = port.get("port")
            if not isinstance(number, int) or not 0 < number < 65536:
                errors.append(_invalid(f"{path}.port", number,
                                       "must be between 1 and 65535, inclusive"))
            protocol = port.get("protocol")
            if protocol not in PROTOCOLS:
                errors.append(not_supported(f"{path}.protocol", protocol, list(PROTOCOLS)))
            target = port.get("targetPort")
            if isinstance(target, int):
                if not 0 < target < 65536:
                    errors.append(_invalid(f"{path}.targetPort", target,
                                           "must be between 1 and 65535, inclusive"))
            elif not isinstance(target, str) or not validation.iana_svc_name(target):
                errors.append(invalid_value(f"{path}.targetPort", target,
                                            "must contain only alpha-numeric characters "
                                            "(a-z, 0-9), and hyphens (-)"))
            node_port = port.get("nodePort")
            if node_port:
                if kind not in ("NodePort", "LoadBalancer"):
                    errors.append(forbidden_field(f"{path}.nodePort",
                                                  f"may not be used when `type` is '{kind}'"))
                elif not isinstance(node_port, int) or not 0 < node_port < 65536:
                    errors.append(_invalid(f"{path}.nodePort", node_port,
                                           "must be between 1 and 65535, inclusive"))
            key = (number, protocol)
            if key in seen:
                errors.append(duplicate(path, f"{number}/{protocol}"))
            seen.add(key)
        return errors

    @staticmethod
    def _policies(spec: dict) -> list[dict]:
        errors = []
        kind = spec.get("type")
        external = spec.get("externalTrafficPolicy")
        if external:
            if kind not in ("NodePort", "LoadBalancer"):
                errors.append(invalid_value("spec.externalTrafficPolicy", external,
                                            "may only be set when `type` is 'NodePort' or "
                                            "'LoadBalancer'"))
            elif external not in TRAFFIC_POLICIES:
                errors.append(not_supported("spec.externalTrafficPolicy", external,
                                            list(TRAFFIC_POLICIES)))
        elif kind in ("NodePort", "LoadBalancer"):
            errors.append(required("spec.externalTrafficPolicy"))
        internal = spec.get("internalTrafficPolicy")
        if kind != "ExternalName" and internal not in TRAFFIC_POLICIES:
            errors.append(not_supported("spec.internalTrafficPolicy", internal,
                                        list(TRAFFIC_POLICIES)))
        health = spec.get("healthCheckNodePort")
        if health and not needs_health_check_port(spec):
            errors.append(invalid_value("spec.healthCheckNodePort", health,
                                        "may only be set when `type` is 'LoadBalancer' and "
                                        "`externalTrafficPolicy` is 'Local'"))
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new)
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if not isinstance(spec, dict):
            return errors
        external = "ExternalName" in (spec.get("type"), old_spec.get("type"))
        old_ips, new_ips = old_spec.get("clusterIPs") or [], spec.get("clusterIPs") or []
        if not external and old_ips and new_ips and old_ips[0] != new_ips[0]:
            errors.append(_invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        return errors

    def validate_status(self, obj: dict) -> list[dict]:
        errors = []
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        for i, entry in enumerate(ingress):
            ip = (entry or {}).get("ip")
            if ip and not _is_ip(ip):
                errors.append(invalid_value(f"status.loadBalancer.ingress[{i}].ip", ip,
                                            "must be a valid IP address"))
        return errors

    def for_subresource(self, subresource: str) -> Strategy:
        return ServiceStatusStrategy() if subresource == "status" else self

    def fields(self, obj: dict) -> dict[str, str]:
        return {**super().fields(obj), "spec.clusterIP": (obj.get("spec") or {}).get(
            "clusterIP", ""), "spec.type": (obj.get("spec") or {}).get("type", "")}


class ServiceStatusStrategy(ServiceStrategy):
    """services/status: only the status is checked (the spec is the stored one)."""

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return self.validate_status(new)


class Allocation:
    """What one write took from the allocators, to give back if the write does not happen."""

    def __init__(self, ips: StoredRange, ports: StoredRange):
        self.ips, self.ports = ips, ports
        self.taken_ips: list[str] = []
        self.taken_ports: list[int] = []

    def ip(self, want: str) -> str:
        if want:
            self.ips.allocate(want)
        else:
            want = self.ips.allocate_next()
        self.taken_ips.append(want)
        return want

    def port(self, want: int) -> int:
        if want:
            self.ports.allocate(want)
        else:
            want = self.ports.allocate_next()
        self.taken_ports.append(want)
        return want

    def undo(self) -> None:
        for ip in self.taken_ips:
            self.ips.release(ip)
        for port in self.taken_ports:
            self.ports.release(port)
        self.taken_ips, self.taken_ports = [], []


def held_ips(spec: dict) -> set[str]:
    return {ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"} \
        if spec.get("type") != "ExternalName" else set()


def held_ports(spec: dict) -> set[int]:
    ports = {p.get("nodePort") for p in spec.get("ports") or []
             if isinstance(p, dict) and p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(spec["healthCheckNodePort"])
    return {p for p in ports if isinstance(p, int)}


class ServiceStore(Store):
    """The Service store: ClusterIPs and NodePorts are reserved before a write and given back
    when a Service no longer holds them."""

    def __init__(self, *args, ips: IPAllocator, ports: PortAllocator, **kwargs):
        super().__init__(*args, **kwargs)
        # In storage, shared by every server on it (kube's RangeAllocations).
        self.ips, self.ports = StoredRange(self.storage, ips), StoredRange(self.storage, ports)
        self._suspects: tuple[set[int], set[int]] = (set(), set())

    def _held(self) -> tuple[set[str], set[int]]:
        """The addresses and the ports the stored Services hold."""
        specs = [svc.get("spec") or {} for svc in self.list("").items]
        return set().union(*map(held_ips, specs)), set().union(*map(held_ports, specs))

    def rebuild(self) -> None:
        """Marks what the stored Services hold (at start, before serving)."""
        ips, ports = self._held()
        self.ips.mark(ips)
        self.ports.mark(ports)

    def repair(self) -> None:
        """Frees addresses and ports no Service has held for two rounds (StoredRange.free_leaks);
        called every so often, as kube's repair controllers run."""
        ips, ports = self._held()
        self._suspects = (self.ips.free_leaks(ips, self._suspects[0]),
                          self.ports.free_leaks(ports, self._suspects[1]))

    def reserve(self, new: dict, old: dict | None) -> Callable[[], None]:
        spec = new.get("spec") or {}
        old_spec = (old or {}).get("spec") or {}
        name = new["metadata"].get("name", "")
        taken = Allocation(self.ips, self.ports)
        try:
            self._reserve_ip(name, spec, old_spec, taken)
            self._reserve_ports(name, spec, old_spec, taken)
        except BaseException:
            taken.undo()
            raise
        return taken.undo

    def _reserve_ip(self, name: str, spec: dict, old_spec: dict, taken: Allocation) -> None:
        if not needs_cluster_ip(spec):
            return
        want = spec.get("clusterIP") or ""
        if want and want in held_ips(old_spec):
            return
        try:
            ip = taken.ip(want)
        except AllocationError as e:
            raise self._refused(name, "spec.clusterIPs", [want] if want else None, str(e))
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        spec["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4"]

    def _reserve_ports(self, name: str, spec: dict, old_spec: dict, taken: Allocation) -> None:
        held = held_ports(old_spec)
        if needs_node_ports(spec):
            for i, port in enumerate(spec.get("ports") or []):
                want = port.get("nodePort") or 0
                if want and want in held:
                    held.discard(want)
                    continue
                try:
                    port["nodePort"] = taken.port(want)
                except AllocationError as e:
                    raise self._refused(name, f"spec.ports[{i}].nodePort", want or None, str(e))
        if needs_health_check_port(spec):
            want = spec.get("healthCheckNodePort") or 0
            if not (want and want in held_ports(old_spec)):
                try:
                    spec["healthCheckNodePort"] = taken.port(want)
                except AllocationError as e:
                    what = f"requested HealthCheck NodePort {want}" if want else \
                        "a HealthCheck NodePort"
                    raise ApiError(500, "InternalError", f"Internal error occurred: failed to "
                                   f"allocate {what}: {e}")

    def _refused(self, name: str, field: str, value: object, detail: str) -> ApiError:
        """A value the user asked for is invalid (422); a full range is the server's 500."""
        if value is None:
            what = "serviceIP" if "clusterIP" in field else "nodePort"
            return ApiError(500, "InternalError",
                            f"Internal error occurred: failed to allocate a {what}: {detail}")
        return self._invalid(name, [_invalid(field, value, detail)])

    def released(self, old: dict, new: dict | None) -> None:
        old_spec = old.get("spec") or {}
        new_spec = (new or {}).get("spec") or {}
        for ip in held_ips(old_spec) - held_ips(new_spec):
            self.ips.release(ip)
        for port in held_ports(old_spec) - held_ports(new_spec):
            self.ports.release(port)

