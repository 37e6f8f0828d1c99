"""pycontainer's per-container shim: a small long-lived process that is the container's parent,
owns its stdio (a CRI log file), reaps it, records how it ended and answers on a unix socket, so
that whoever started the container (the kubelet) may die, restart or be upgraded meanwhile.

    import shim
    info = shim.start(shim.ShimConfig("web", "/path/to/bundle", log_path="/var/log/pods/.../0.log"))
    with shim.connect("web") as c:          # shim_root=... when not /run/pycontainer-shim
        c.state(); c.exec(["cat", "/etc/hostname"], timeout=5); c.kill("SIGTERM")
        status = c.wait()                   # ExitStatus(exit_code=143, signal=15, ...)
        c.shutdown()                        # deletes the container; the shim exits
    shim.read_exit("web")                   # from the exit file, no live shim needed
    shim.list_shims()                       # [ShimInfo(...)], to find them again after a restart

The API:
    ShimConfig(id, bundle, log_path=None, stdin=None, stdin_once=True, shim_root=DEFAULT_ROOT,
               runtime_root="/run/pycontainer", runtime=<the pycontainer of this install>)
    start(config: ShimConfig) -> ShimInfo(id, pid, container_pid, socket, state_dir)
    connect(id, shim_root=DEFAULT_ROOT) -> ShimClient
        ShimClient.state() -> ShimState, .kill(signal=15, all=False), .wait(timeout=None) ->
        ExitStatus, .exec(args, env=None, cwd=None, timeout=None) -> ExecResult,
        .reopen_log(), .shutdown(), .close(); .send_wait() then, once .fileno() is readable,
        .exit_answer() -> ExitStatus | None: many waits in one thread; .attach() -> tty, then
        .read_frame() -> (stream, bytes) | None: the live output; .resize(width, height)
    read_exit(id, shim_root) -> ExitStatus | None
    list_shims(shim_root) -> list[ShimInfo]; is_alive(id, shim_root) -> bool;
    remove_dead(id, shim_root, runtime_root): what a shim that was killed left: its container
        (deleted with `runtime delete --force`) and its state
    ShimError: every failure, one line.
The control socket's protocol is documented in shim.protocol, the state directory in
shim.layout, and how shims are forked in shim.zygote.

Names load lazily: the zygote imports this package and must not pay for the library's imports.
"""
from __future__ import annotations

_EXPORTS = {
    "start": "shim.launch",
    "connect": "shim.client", "ShimClient": "shim.client",
    "read_exit": "shim.lookup", "list_shims": "shim.lookup", "is_alive": "shim.lookup",
    "remove_dead": "shim.lookup",
    "ShimConfig": "shim.records", "ShimInfo": "shim.records", "ShimState": "shim.records",
    "ExitStatus": "shim.records", "ExecResult": "shim.records", "ShimError": "shim.records",
    "DEFAULT_ROOT": "shim.layout",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
