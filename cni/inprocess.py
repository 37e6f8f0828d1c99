"""Runs our own plugins inside the calling process (the kubelet; our bridge plugin delegating to
our host-local), through the same dispatch code as their executables, and any other plugin by
exec: a pod start then pays no interpreter start and no import for our plugins, and keeps the
CNI protocol for everyone else."""
from __future__ import annotations

from . import skel
from .exec import parse_reply


def runner(plugin_type: str, paths: list[str], env: dict, stdin: bytes) -> dict | None:
    """A delegation runner (see skel.Args.delegate) that keeps our plugins in-process."""
    if plugin_type not in skel.PLUGINS:
        return skel.exec_runner(plugin_type, paths, env, stdin)
    code, out = skel.dispatch(plugin_type, env, lambda: stdin, runner)
    return parse_reply(plugin_type, code, out)
