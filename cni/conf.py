"""Network configuration lists (.conflist, or a single-plugin .conf/.json that is wrapped into a
list as libcni does) and finding them in a conf dir: the first file by name order, or the one
whose network has the asked name."""
from __future__ import annotations

import json
import os

from . import names, version
from .errors import DECODING_FAILURE, INCOMPATIBLE_VERSION, CNIError, invalid_config

DEFAULT_CONF_DIR = "/etc/cni/net.d"
EXTENSIONS = (".conf", ".conflist", ".json")


class NetworkConfigList:
    """A network: its name, the spec version chosen for it, and its plugin configurations."""

    __slots__ = ("name", "cni_version", "plugins", "disable_check", "disable_gc", "raw",
                 "source")

    def __init__(self, data: dict, raw: bytes, source: str = "") -> None:
        where = source or "network config"
        self.source = source
        self.raw = raw
        self.name = data.get("name")
        if not isinstance(self.name, str) or not names.valid(self.name):
            raise invalid_config(f"{where}: name: missing or invalid network name {self.name!r}")
        self.cni_version = _choose_version(data, where)
        plugins = data.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise invalid_config(f"{where}: plugins: must be a non-empty list")
        for i, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) \
                    or not plugin["type"] or "/" in plugin["type"]:
                raise invalid_config(f"{where}: plugins[{i}].type: missing or invalid")
        self.plugins: list[dict] = plugins
        self.disable_check = bool(data.get("disableCheck", False))
        self.disable_gc = bool(data.get("disableGC", False))

    def __repr__(self) -> str:
        return f"NetworkConfigList({self.name!r}, {self.cni_version}, " \
               f"{[p['type'] for p in self.plugins]})"


def _choose_version(data: dict, where: str) -> str:
    # Spec section 1: the highest version that cniVersion and cniVersions offer (and we speak).
    offered = [data.get("cniVersion")] + list(data.get("cniVersions") or [])
    usable = [v for v in offered if isinstance(v, str) and v in version.SUPPORTED]
    if not usable:
        raise CNIError(INCOMPATIBLE_VERSION, f"{where}: cniVersion: none of "
                       f"{[v for v in offered if v]} is supported ({list(version.SUPPORTED)})")
    return max(usable, key=version.parse)


def parse(raw: bytes, source: str = "") -> NetworkConfigList:
    """A network from the bytes of a .conflist, or of a single plugin's .conf."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CNIError(DECODING_FAILURE, f"{source or 'network config'}: invalid JSON: {exc}") \
            from None
    if not isinstance(data, dict):
        raise CNIError(DECODING_FAILURE, f"{source or 'network config'}: not a JSON object")
    if "plugins" not in data and "type" in data:
        plugin = {k: v for k, v in data.items() if k not in ("name", "cniVersion")}
        data = {"name": data.get("name"), "cniVersion": data.get("cniVersion"),
                "plugins": [plugin]}
    return NetworkConfigList(data, raw, source)


def conf_files(conf_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(conf_dir))
    except FileNotFoundError:
        return []
    return [os.path.join(conf_dir, n) for n in names if n.endswith(EXTENSIONS)
            and os.path.isfile(os.path.join(conf_dir, n))]


def load(conf_dir: str = DEFAULT_CONF_DIR, name: str = "") -> NetworkConfigList:
    """The network named `name` in `conf_dir`, or without a name the first valid file in name
    order. CNIError (code 7) when there is none."""
    errors = []
    for path in conf_files(conf_dir):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            net = parse(raw, path)
        except CNIError as exc:
            errors.append(str(exc))
            continue
        if not name or net.name == name:
            return net
    wanted = f"network {name!r}" if name else "network configuration"
    raise invalid_config(f"no valid {wanted} in {conf_dir}", "; ".join(errors))
