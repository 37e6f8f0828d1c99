"""The kubelet's configuration: the KubeletConfiguration fields we support (same names, same
defaults as the real kubelet unless noted), read from the --config YAML, then overridden by the
flags (cli.py), as the kubelet does."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from kubeapi.component.config_file import read_config_file
from kubeapi.quantity import parse_quantity
from kubelet.durations import parse_duration

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"
DEFAULT_ROOT_DIR = "/var/lib/pykubelet"
DEFAULT_IMAGE_ROOT = "/var/lib/pycontainer"   # overlay's store, shared with `pycontainer image`
IMAGE_ROOT_ENV = "PYCONTAINER_IMAGE_ROOT"


class ConfigError(ValueError):
    """One line naming the field and the problem."""


def _default_eviction_hard() -> dict[str, str]:
    return {"memory.available": "100Mi", "nodefs.available": "10%",
            "nodefs.inodesFree": "5%", "imagefs.available": "15%"}


@dataclass
class KubeletConfig:
    # -- where things are (flags; podLogsDir and cgroupRoot also in the file) ---------------
    root_dir: str = DEFAULT_ROOT_DIR
    pod_logs_dir: str = "/var/log/pods"
    image_root: str = ""                      # "" -> $PYCONTAINER_IMAGE_ROOT or the default
    kubeconfig: str = ""                      # "" -> standalone mode
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: list[str] = field(default_factory=lambda: ["/opt/cni/bin"])
    cni_cache_dir: str = "/var/lib/cni/cache"
    # Our whole tree of pod cgroups lives under this parent (the real kubelet's default is the
    # root cgroup; ours keeps everything under the `pycontainer` parent like the runtime).
    cgroup_root: str = "/pycontainer"
    # "": pycontainer's CRI service in this process; else a CRI socket, unix:///path.
    container_runtime_endpoint: str = ""
    image_service_endpoint: str = ""          # "": the runtime's
    # -- the node ---------------------------------------------------------------------------
    node_name: str = ""
    node_ip: str = ""
    node_labels: dict[str, str] = field(default_factory=dict)
    register_node: bool = True
    max_pods: int = 110
    system_reserved: dict[str, str] = field(default_factory=dict)
    kube_reserved: dict[str, str] = field(default_factory=dict)
    eviction_hard: dict[str, str] = field(default_factory=_default_eviction_hard)
    pod_pids_limit: int = -1                  # -1: no pids limit per pod
    allowed_unsafe_sysctls: list[str] = field(default_factory=list)
    seccomp_default: bool = False             # RuntimeDefault where a pod names no profile
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = ""
    resolv_conf: str = "/etc/resolv.conf"     # --resolv-conf; "" -> no host DNS settings
    node_status_update_frequency: float = 10.0
    node_status_report_frequency: float = 300.0
    node_lease_duration_seconds: int = 40
    # -- pods -------------------------------------------------------------------------------
    static_pod_path: str = ""
    file_check_frequency: float = 20.0        # how often static pod manifests are read again
    sync_frequency: float = 60.0
    serialize_image_pulls: bool = True
    container_log_max_size: int = 10 << 20
    container_log_max_files: int = 5
    container_log_monitor_interval: float = 10.0
    max_per_pod_container: int = 1            # --maximum-dead-containers-per-container
    # -- the kubelet's HTTPS server ---------------------------------------------------------
    address: str = "0.0.0.0"
    port: int = 10250                         # 0: any free port (tests)
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""                  # "" -> the CA of the kubeconfig
    anonymous_auth: bool = False
    webhook_auth: bool = True                 # bearer tokens checked with the API server

    @property
    def image_store_root(self) -> str:
        return self.image_root or os.environ.get(IMAGE_ROOT_ENV) or DEFAULT_IMAGE_ROOT

    def validate(self) -> None:
        if not self.root_dir or not os.path.isabs(self.root_dir):
            raise ConfigError(f"--root-dir: {self.root_dir!r} must be an absolute path")
        if not os.path.isabs(self.pod_logs_dir):
            raise ConfigError(f"podLogsDir: {self.pod_logs_dir!r} must be an absolute path")
        if not self.node_name:
            raise ConfigError("--hostname-override: the node name is empty")
        if not 1 <= self.max_pods <= 10000:
            raise ConfigError(f"maxPods: {self.max_pods} must be between 1 and 10000")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        if self.container_log_max_files < 2:
            raise ConfigError(f"containerLogMaxFiles: {self.container_log_max_files} must be "
                              "at least 2")
        if self.container_log_max_size < 1 << 10:
            raise ConfigError(f"containerLogMaxSize: {self.container_log_max_size} bytes is too "
                              "small (at least 1Ki)")
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            raise ConfigError("tlsCertFile and tlsPrivateKeyFile: give both or neither")
        if self.node_lease_duration_seconds <= 0:
            raise ConfigError("nodeLeaseDurationSeconds: must be greater than 0")
        if self.file_check_frequency <= 0:
            raise ConfigError("fileCheckFrequency: must be greater than 0")
        if self.image_service_endpoint and not self.container_runtime_endpoint:
            raise ConfigError("imageServiceEndpoint: needs a containerRuntimeEndpoint (the "
                              "in-process runtime has its own images)")
        if not self.cgroup_root.startswith("/") or self.cgroup_root.rstrip("/") == "":
            raise ConfigError(f"cgroupRoot: {self.cgroup_root!r} must be an absolute cgroup "
                              "path below the root, like /pycontainer")


def _duration(name: str):
    return lambda v: parse_duration(v, name)


def parse_bytes(value: object, name: str) -> int:
    try:
        return int(parse_quantity(value))
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a quantity like 10Mi") from None


def _bytes(name: str):
    return lambda v: parse_bytes(v, name)


def _int(name: str):
    def convert(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{name}: {value!r} must be an integer")
        return value
    return convert


def _bool(name: str):
    def convert(value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: {value!r} must be true or false")
        return value
    return convert


def _str(name: str):
    def convert(value: object) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: {value!r} must be a string")
        return value
    return convert


def _str_list(name: str):
    def convert(value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: must be a list of strings")
        return list(value)
    return convert


def _str_map(name: str):
    def convert(value: object) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{name}: must be a map of strings")
        return {k: str(v) for k, v in value.items()}
    return convert


# KubeletConfiguration field -> (our attribute, converter)
_FIELDS = {
    "podLogsDir": ("pod_logs_dir", _str("podLogsDir")),
    "cgroupRoot": ("cgroup_root", _str("cgroupRoot")),
    "containerRuntimeEndpoint": ("container_runtime_endpoint",
                                 _str("containerRuntimeEndpoint")),
    "imageServiceEndpoint": ("image_service_endpoint", _str("imageServiceEndpoint")),
    "staticPodPath": ("static_pod_path", _str("staticPodPath")),
    "syncFrequency": ("sync_frequency", _duration("syncFrequency")),
    "fileCheckFrequency": ("file_check_frequency", _duration("fileCheckFrequency")),
    "serializeImagePulls": ("serialize_image_pulls", _bool("serializeImagePulls")),
    "address": ("address", _str("address")),
    "port": ("port", _int("port")),
    "tlsCertFile": ("tls_cert_file", _str("tlsCertFile")),
    "tlsPrivateKeyFile": ("tls_private_key_file", _str("tlsPrivateKeyFile")),
    "maxPods": ("max_pods", _int("maxPods")),
    "registerNode": ("register_node", _bool("registerNode")),
    "systemReserved": ("system_reserved", _str_map("systemReserved")),
    "kubeReserved": ("kube_reserved", _str_map("kubeReserved")),
    "evictionHard": ("eviction_hard", _str_map("evictionHard")),
    "podPidsLimit": ("pod_pids_limit", _int("podPidsLimit")),
    "allowedUnsafeSysctls": ("allowed_unsafe_sysctls", _str_list("allowedUnsafeSysctls")),
    "seccompDefault": ("seccomp_default", _bool("seccompDefault")),
    "clusterDNS": ("cluster_dns", _str_list("clusterDNS")),
    "clusterDomain": ("cluster_domain", _str("clusterDomain")),
    "resolvConf": ("resolv_conf", _str("resolvConf")),
    "nodeStatusUpdateFrequency": ("node_status_update_frequency",
                                  _duration("nodeStatusUpdateFrequency")),
    "nodeStatusReportFrequency": ("node_status_report_frequency",
                                  _duration("nodeStatusReportFrequency")),
    "nodeLeaseDurationSeconds": ("node_lease_duration_seconds",
                                 _int("nodeLeaseDurationSeconds")),
    "containerLogMaxSize": ("container_log_max_size", _bytes("containerLogMaxSize")),
    "containerLogMaxFiles": ("container_log_max_files", _int("containerLogMaxFiles")),
    "containerLogMonitorInterval": ("container_log_monitor_interval",
                                    _duration("containerLogMonitorInterval")),
}


def load_file(path: str, config: KubeletConfig) -> list[str]:
    """Applies the KubeletConfiguration at `path` to `config`; returns warnings for the fields
    we do not support (the kubelet, too, only warns about unknown fields)."""
    raw = read_config_file(path, ConfigError)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"--config: {path} must hold a KubeletConfiguration object")
    if raw.get("kind", KIND) != KIND or raw.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError(f"--config: {path}: expected apiVersion {API_VERSION}, kind {KIND}, "
                          f"got {raw.get('apiVersion')}, {raw.get('kind')}")
    warnings = []
    for key, value in raw.items():
        if key in ("kind", "apiVersion"):
            continue
        if key == "authentication":
            _authentication(value, config)
        elif key in _FIELDS:
            attr, convert = _FIELDS[key]
            try:
                setattr(config, attr, convert(value))
            except ValueError as e:
                raise ConfigError(str(e) if str(e).startswith(key) else f"{key}: {e}") from None
        else:
            warnings.append(f"--config: field {key} is not supported by pykubelet; ignored")
    return warnings


def _authentication(value: object, config: KubeletConfig) -> None:
    if not isinstance(value, dict):
        raise ConfigError("authentication: must be an object")
    x509 = value.get("x509") or {}
    if "clientCAFile" in x509:
        config.client_ca_file = _str("authentication.x509.clientCAFile")(x509["clientCAFile"])
    anonymous = value.get("anonymous") or {}
    if "enabled" in anonymous:
        config.anonymous_auth = _bool("authentication.anonymous.enabled")(anonymous["enabled"])
    webhook = value.get("webhook") or {}
    if "enabled" in webhook:
        config.webhook_auth = _bool("authentication.webhook.enabled")(webhook["enabled"])
