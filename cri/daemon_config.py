"""pycontainer-cri's settings: where it listens and keeps its state, CNI and images, the
streaming server. Flag names follow containerd's CRI plugin where it has one (the `--` form of
its config keys) and CRI-O's otherwise."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_LISTEN = "unix:///run/pycontainer/cri.sock"
DEFAULT_ROOT = "/var/lib/pycontainer"      # the image store `pycontainer image` uses too
DEFAULT_STATE = "/run/pycontainer/cri"


class ConfigError(ValueError):
    """A setting is unusable; one line naming the flag."""


@dataclass
class DaemonConfig:
    listen: str = DEFAULT_LISTEN
    root: str = DEFAULT_ROOT                 # images (persistent)
    state: str = DEFAULT_STATE               # sandboxes, containers, shims, netns (volatile)
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: list[str] = field(default_factory=lambda: ["/opt/cni/bin"])
    cni_cache_dir: str = "/var/lib/cni/cache"
    sandbox_image: str = ""                  # kept pinned; no pause container runs from it
    pinned_images: list[str] = field(default_factory=list)
    registry_config: str = ""                # a docker config.json with registry credentials
    insecure_registries: list[str] = field(default_factory=list)
    stream_server_address: str = "127.0.0.1"
    stream_server_port: int = 0              # 0: any free port, as containerd's default
    serialize_image_pulls: bool = True

    @property
    def socket_path(self) -> str:
        return self.listen[len("unix://"):] if self.listen.startswith("unix://") \
            else self.listen

    def check(self) -> None:
        if not self.listen.startswith("unix://") and not self.listen.startswith("/"):
            raise ConfigError(f"--listen: {self.listen!r} must be unix:///path/to/socket")
        if len(self.socket_path.encode()) > 107:
            raise ConfigError(f"--listen: {self.socket_path} is too long for a unix socket")
        for flag, value in (("--root", self.root), ("--state", self.state),
                            ("--listen", self.socket_path), ("--cni-conf-dir", self.cni_conf_dir),
                            ("--cni-cache-dir", self.cni_cache_dir)):
            if not os.path.isabs(value):
                raise ConfigError(f"{flag}: {value!r} must be an absolute path")
        if not 0 <= self.stream_server_port < 65536:
            raise ConfigError(f"--stream-server-port: {self.stream_server_port} is not a port")
        if self.registry_config and not os.path.isfile(self.registry_config):
            raise ConfigError(f"--registry-config: {self.registry_config}: no such file")

    def summary(self) -> dict:
        """What Status(verbose) reports as the daemon's config."""
        return {"listen": self.listen, "rootDir": self.root, "stateDir": self.state,
                "cni": {"confDir": self.cni_conf_dir, "binDirs": self.cni_bin_dirs},
                "sandboxImage": self.sandbox_image,
                "streamServerAddress": self.stream_server_address,
                "streamServerPort": str(self.stream_server_port),
                "registry": {"configPath": self.registry_config,
                             "insecure": self.insecure_registries},
                "cgroupDriver": "cgroupfs"}
