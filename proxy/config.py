"""pykube-proxy's configuration: a KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1,
the subset below) with the command line's flags on top. Anything wrong is a ConfigError whose
message names the flag or field."""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field

from kubeapi.component.config_file import read_config_file

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"
MODES = ("nftables", "iptables")
# The fields of the file this proxy reads; others are refused, as kube-proxy's strict decoding
# refuses unknown ones (a known field we ignore would be a silent surprise).
FILE_FIELDS = {"apiVersion", "kind", "clientConnection", "mode", "clusterCIDR",
               "hostnameOverride", "nodePortAddresses", "nftables", "iptables", "syncPeriod",
               "minSyncPeriod", "bindAddress", "healthzBindAddress"}
MODE_FIELDS = {"masqueradeAll", "masqueradeBit", "syncPeriod", "minSyncPeriod"}

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?:[0-9]*\.?[0-9]+(?:ns|us|µs|ms|s|m|h))+")
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


class ConfigError(ValueError):
    pass


@dataclass
class ProxyConfig:
    kubeconfig: str = ""
    mode: str = "nftables"
    cluster_cidrs: list[str] = field(default_factory=list)
    hostname_override: str = ""
    nodeport_addresses: list[str] = field(default_factory=list)  # [] : every local address
    masquerade_all: bool = False
    sync_period: float = 30.0
    min_sync_period: float = 1.0
    healthz_bind_address: str = "0.0.0.0:10256"  # "" : no health server

    @property
    def node_name(self) -> str:
        return (self.hostname_override or socket.gethostname()).strip().lower()


def parse_duration(text: object, name: str) -> float:
    """Seconds from a Go duration ("1s", "300ms", "1m30s")."""
    if not isinstance(text, str) or not (text == "0" or _DURATION.fullmatch(text)):
        raise ConfigError(f"{name}: {text!r} is not a duration like 1s or 300ms")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def parse_cidrs(text: object, name: str) -> list[str]:
    """A comma-separated list (or a YAML list) of IPv4 CIDRs."""
    items = text if isinstance(text, list) else str(text or "").split(",")
    out = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if item == "primary":
            raise ConfigError(f"{name}: 'primary' is not supported; give CIDRs")
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a CIDR") from None
        if net.version != 4:
            raise ConfigError(f"{name}: {item}: only IPv4 is supported")
        out.append(str(net))
    return out


def parse_address(text: object, name: str) -> str:
    """host:port (an IP, [IPv6] or empty host), or "" for none."""
    text = str(text or "")
    if not text:
        return ""
    host, sep, port = text.rpartition(":")
    try:
        if host.strip("[]"):
            ipaddress.ip_address(host.strip("[]"))
        valid = bool(sep) and port.isdigit() and 0 <= int(port) < 65536
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{name}: {text!r} is not an IP:port")
    return text


def parse_mode(text: object, name: str) -> str:
    mode = str(text or "nftables")
    if mode not in MODES:
        raise ConfigError(f"{name}: unknown mode {mode!r} (nftables)")
    if mode == "iptables":
        raise ConfigError(f"{name}: iptables mode is not implemented: nftables is the only "
                          "mode of pykube-proxy")
    return mode


def load_file(path: str) -> ProxyConfig:
    raw = read_config_file(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"--config: {path} is not a KubeProxyConfiguration")
    if raw.get("kind") != KIND or raw.get("apiVersion") != API_VERSION:
        raise ConfigError(f"--config: {path}: expected apiVersion {API_VERSION} and kind {KIND}")
    unknown = sorted(set(raw) - FILE_FIELDS)
    if unknown:
        raise ConfigError(f"--config: {path}: unknown field {unknown[0]!r}")
    cfg = ProxyConfig()
    conn = raw.get("clientConnection") or {}
    if not isinstance(conn, dict):
        raise ConfigError("--config: clientConnection must be an object")
    cfg.kubeconfig = str(conn.get("kubeconfig") or "")
    cfg.mode = parse_mode(raw.get("mode") or "nftables", "--config: mode")
    cfg.cluster_cidrs = parse_cidrs(raw.get("clusterCIDR") or "", "--config: clusterCIDR")
    cfg.hostname_override = str(raw.get("hostnameOverride") or "")
    if raw.get("healthzBindAddress") is not None:
        cfg.healthz_bind_address = parse_address(raw["healthzBindAddress"],
                                                 "--config: healthzBindAddress")
    cfg.nodeport_addresses = parse_cidrs(raw.get("nodePortAddresses") or [],
                                         "--config: nodePortAddresses")
    for key in ("syncPeriod", "minSyncPeriod"):
        if raw.get(key) is not None:
            setattr(cfg, _snake(key), parse_duration(raw[key], f"--config: {key}"))
    section = raw.get(cfg.mode) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"--config: {cfg.mode} must be an object")
    unknown = sorted(set(section) - MODE_FIELDS)
    if unknown:
        raise ConfigError(f"--config: {path}: unknown field {cfg.mode}.{unknown[0]}")
    if "masqueradeAll" in section:
        if not isinstance(section["masqueradeAll"], bool):
            raise ConfigError(f"--config: {cfg.mode}.masqueradeAll must be true or false")
        cfg.masquerade_all = section["masqueradeAll"]
    if section.get("masqueradeBit") not in (None, 14):
        raise ConfigError(f"--config: {cfg.mode}.masqueradeBit: only 14 (mark 0x4000) is "
                          "supported")
    for key in ("syncPeriod", "minSyncPeriod"):
        if section.get(key) is not None:
            setattr(cfg, _snake(key), parse_duration(section[key], f"--config: {cfg.mode}.{key}"))
    return cfg


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)
