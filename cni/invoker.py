"""Runs a network configuration list for a container, as libcni does (spec section 3): ADD
through the chain passing each result on as prevResult, DEL in reverse with the cached result,
CHECK, GC and STATUS; results cached per attachment (cache.py). Plugins are executables found
in a list of bin dirs; with in_process=True our own plugins run inside this process instead
(skel.in_process_runner), every other plugin still by exec."""
from __future__ import annotations

import json
import os

from . import cache, names, version
from .errors import (INCOMPATIBLE_VERSION, INTERNAL, INVALID_ENVIRONMENT, UNKNOWN_CONTAINER,
                     CNIError, invalid_config)
from .conf import NetworkConfigList


class RuntimeConf:
    """One attachment: the container, its netns, the interface name, CNI_ARGS pairs and the
    capability arguments (e.g. {"portMappings": [...]})."""

    __slots__ = ("container_id", "netns", "ifname", "args", "capability_args")

    def __init__(self, container_id: str, netns: str, ifname: str = "eth0",
                 args: list[tuple[str, str]] | None = None,
                 capability_args: dict | None = None) -> None:
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = list(args or [])
        self.capability_args = dict(capability_args or {})

    def validate(self) -> None:
        if not self.container_id or not names.valid(self.container_id):
            raise CNIError(INVALID_ENVIRONMENT, f"container ID {self.container_id!r}: must be "
                           "letters, digits, '_', '.', '-' and start with a letter or digit")
        if not self.ifname or len(self.ifname) > 15 or any(c in self.ifname for c in "/: \t"):
            raise CNIError(INVALID_ENVIRONMENT, f"interface name {self.ifname!r}: 1-15 "
                           "characters, no '/', ':' or whitespace")


class CNI:
    """The invoker. `bin_dirs` is CNI_PATH; `cache_dir` holds results/ (libcni's layout)."""

    def __init__(self, bin_dirs: list[str], cache_dir: str = cache.DEFAULT_CACHE_DIR,
                 in_process: bool = False) -> None:
        self.bin_dirs = list(bin_dirs)
        self.cache_dir = cache_dir
        self.in_process = in_process

    # -- running one plugin ------------------------------------------------------------------

    def _env(self, command: str, rt: RuntimeConf | None) -> dict[str, str]:
        env = dict(os.environ)
        env["CNI_COMMAND"] = command
        env["CNI_PATH"] = ":".join(self.bin_dirs)
        for key in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"):
            env.pop(key, None)
        if rt is not None:
            env["CNI_CONTAINERID"] = rt.container_id
            env["CNI_NETNS"] = rt.netns
            env["CNI_IFNAME"] = rt.ifname
            if rt.args:
                env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in rt.args)
        return env

    def _run(self, plugin_type: str, env: dict, stdin: bytes) -> dict | None:
        if self.in_process:
            from .skel import in_process_runner as runner
        else:
            from .skel import exec_runner as runner
        return runner(plugin_type, self.bin_dirs, env, stdin)

    def _invoke(self, net: NetworkConfigList, plugin: dict, command: str,
                rt: RuntimeConf | None, prev: dict | None = None, extra: dict | None = None):
        conf = {k: v for k, v in plugin.items() if k != "capabilities"}
        conf["name"] = net.name
        conf["cniVersion"] = net.cni_version
        if prev is not None:
            conf["prevResult"] = prev
        if rt is not None:
            # Spec section 3: the capabilities the plugin declares that the runtime provides.
            wanted = {c for c, on in (plugin.get("capabilities") or {}).items() if on}
            runtime_config = {c: v for c, v in rt.capability_args.items() if c in wanted}
            if runtime_config:
                conf["runtimeConfig"] = runtime_config
        if extra:
            conf.update(extra)
        try:
            return self._run(plugin["type"], self._env(command, rt), json.dumps(conf).encode())
        except CNIError as exc:
            raise CNIError(exc.code, f"plugin type={plugin['type']!r} failed ({command.lower()})"
                           f": {exc.msg}", exc.details) from None

    # -- the chain ----------------------------------------------------------------------------

    def add(self, net: NetworkConfigList, rt: RuntimeConf) -> dict:
        """Adds the container to the network and returns the final result. If a plugin fails,
        the chain is deleted again (the spec's DEL after a failed ADD) before the error is
        raised, so nothing is left behind."""
        rt.validate()
        if cache.read(self.cache_dir, net.name, rt.container_id, rt.ifname) is not None:
            # The spec forbids a second ADD without DEL; refusing it here also keeps the
            # rollback below from tearing down the attachment that exists.
            raise CNIError(INTERNAL, f"{rt.container_id} {rt.ifname} is already attached to "
                           f"network {net.name}: DEL it first")
        result = None
        try:
            for plugin in net.plugins:
                result = self._invoke(net, plugin, "ADD", rt, result)
                if result is None:
                    raise invalid_config(f"plugin {plugin['type']!r} returned no result on ADD")
        except CNIError:
            try:
                self._delete_chain(net, rt, None)
            except CNIError:
                pass  # the ADD error is the one to report
            raise
        cache.write(self.cache_dir, net.name, net.raw, rt, result)
        return result

    def _delete_chain(self, net: NetworkConfigList, rt: RuntimeConf, prev: dict | None) -> None:
        for plugin in reversed(net.plugins):
            self._invoke(net, plugin, "DEL", rt, prev)

    def delete(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """Removes the container from the network (plugins in reverse order, each given the
        cached ADD result); safe to repeat."""
        rt.validate()
        prev = None
        if version.at_least(net.cni_version, "0.4.0"):
            entry = cache.read(self.cache_dir, net.name, rt.container_id, rt.ifname)
            prev = entry.get("result") if entry else None
        self._delete_chain(net, rt, prev)
        cache.remove(self.cache_dir, net.name, rt.container_id, rt.ifname)

    def check(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        rt.validate()
        if not version.at_least(net.cni_version, "0.4.0"):
            raise CNIError(INCOMPATIBLE_VERSION, f"configuration version {net.cni_version} does "
                           "not support CHECK")
        if net.disable_check:
            return
        prev = self.cached_result(net, rt)
        if prev is None:
            raise CNIError(UNKNOWN_CONTAINER, f"no cached result for {rt.container_id} "
                           f"{rt.ifname} on network {net.name}")
        for plugin in net.plugins:
            self._invoke(net, plugin, "CHECK", rt, prev)

    def cached_result(self, net: NetworkConfigList, rt: RuntimeConf) -> dict | None:
        entry = cache.read(self.cache_dir, net.name, rt.container_id, rt.ifname)
        return entry.get("result") if entry else None

    def gc(self, net: NetworkConfigList, valid: list[tuple[str, str]]) -> None:
        """Removes what the network holds for attachments not in `valid` ((container ID,
        ifname) pairs): stale cache entries, then each plugin's GC. All plugins run; the errors
        are raised together at the end."""
        keep = set(valid)
        for entry in cache.entries(self.cache_dir):
            if entry.get("networkName") == net.name and \
                    (entry.get("containerId"), entry.get("ifName")) not in keep:
                os.unlink(entry["path"])
        if net.disable_gc or not version.at_least(net.cni_version, "1.1.0"):
            return
        attachments = [{"containerID": c, "ifname": i} for c, i in sorted(keep)]
        errors = []
        for plugin in net.plugins:
            try:
                self._invoke(net, plugin, "GC", None,
                             extra={"cni.dev/valid-attachments": attachments})
            except CNIError as exc:
                errors.append(exc)
        if errors:
            raise CNIError(errors[0].code, "; ".join(e.msg for e in errors))

    def status(self, net: NetworkConfigList) -> None:
        """Raises the first plugin's error if the network cannot take ADDs now."""
        if not version.at_least(net.cni_version, "1.1.0"):
            return
        for plugin in net.plugins:
            self._invoke(net, plugin, "STATUS", None)

    def version_info(self, plugin_type: str) -> dict:
        return self._run(plugin_type, self._env("VERSION", None),
                         json.dumps({"cniVersion": version.LATEST}).encode()) or {}
