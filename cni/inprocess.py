"""Runs our own plugins inside the calling process (the kubelet), through the same dispatch code
as their executables, and any other plugin by exec: a pod start then pays no interpreter start
and no import for our plugins, and keeps the CNI protocol for everyone else."""
from __future__ import annotations

import importlib

from . import skel
from .exec import parse_reply

# Plugin type (executable name) -> module with its HANDLERS.
OURS = {
    "pycni-bridge": "cni.bridge",
    "pycni-host-local": "cni.host_local",
    "pycni-loopback": "cni.loopback",
    "pycni-portmap": "cni.portmap",
}


def runner(plugin_type: str, paths: list[str], env: dict, stdin: bytes) -> dict | None:
    """A delegation runner (see skel.Args.delegate) that keeps our plugins in-process."""
    module = OURS.get(plugin_type)
    if module is None:
        return skel.exec_runner(plugin_type, paths, env, stdin)
    handlers = importlib.import_module(module).HANDLERS
    code, out = skel.dispatch(handlers, env, lambda: stdin, runner)
    return parse_reply(plugin_type, code, out)
