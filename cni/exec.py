"""Finding a CNI plugin executable in a list of directories and running it with the CNI
protocol: parameters in the environment, configuration on stdin, result or error on stdout.

Uses os.posix_spawn rather than subprocess, whose import alone costs more than a plugin's work
(see bench/)."""
from __future__ import annotations

import os

from . import jsonio
from .errors import DECODING_FAILURE, INVALID_CONFIG, CNIError


def find_plugin(plugin_type: str, paths: list[str]) -> str:
    """The executable for `plugin_type` in the first of `paths` that has it."""
    if not plugin_type or "/" in plugin_type or plugin_type in (".", ".."):
        raise CNIError(INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
    for directory in paths:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(INVALID_CONFIG, f"failed to find plugin {plugin_type!r} in path {paths}")


def _spawn(path: str, env: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        # The pipes are close-on-exec; dup2 onto 0 and 1 makes just those two inherited.
        # stderr is inherited as is: the spec wants a delegate's stderr on the caller's.
        pid = os.posix_spawn(path, [path], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1)])
    finally:
        os.close(in_r)
        os.close(out_w)
    try:
        try:
            view = memoryview(stdin)
            while view:
                view = view[os.write(in_w, view):]
        except BrokenPipeError:  # it exited without reading all of it; its status tells why
            pass
        os.close(in_w)
        in_w = -1
        chunks = []
        while chunk := os.read(out_r, 65536):
            chunks.append(chunk)
    finally:
        if in_w >= 0:
            os.close(in_w)
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def run_plugin(path: str, env: dict[str, str], stdin: bytes) -> dict | None:
    """Runs the plugin; returns its decoded stdout (None when empty) or raises the CNIError it
    reported (or one describing how it failed)."""
    code, out = _spawn(path, env, stdin)
    return parse_reply(os.path.basename(path), code, out)


def parse_reply(name: str, code: int, out: bytes) -> dict | None:
    """The decoded stdout of a plugin that exited with `code`, or the CNIError it reported."""
    if code != 0:
        try:
            err = jsonio.loads(out)
            raise CNIError(int(err["code"]), str(err.get("msg", "")), str(err.get("details", "")))
        except (ValueError, KeyError, TypeError):
            raise CNIError(DECODING_FAILURE, f"{name} exited with status "
                           f"{code} without an error result",
                           out.decode(errors="replace")[:500]) from None
    if not out.strip():
        return None
    try:
        return jsonio.loads(out)
    except ValueError as exc:
        raise CNIError(DECODING_FAILURE, f"{name} printed invalid JSON: {exc}",
                       out.decode(errors="replace")[:500]) from None
