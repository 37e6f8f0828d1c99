from __future__ import annotations

import os

from linux.syscalls import Syscalls
from runtime import config as config_mod, container as container_mod, foreground, launcher
from runtime.cli.lean_parser import Parsed
from runtime.cli.commands.create import check_terminal, connect_console, create_options
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.log import Log

_IMAGE_ONLY = ("name", "rm", "env", "memory", "cpus", "tty")


def run(p: Parsed, log: Log) -> int:
    o = p.options
    if o["image"] is not None:
        return _run_image(p, log)
    for name in _IMAGE_ONLY:
        if o[name]:
            raise PycontainerError(f"--{name}: only with --image")
    if o["network"] != "none":
        raise PycontainerError("--network: only with --image")
    if p.args["container_id"] is None:
        raise PycontainerError("CONTAINER_ID: missing (or give --image to run an image)")
    if p.args["command"]:
        raise PycontainerError(f"{p.args['command'][0]}: a command is given with --image only; "
                               "a bundle's config.json holds its process")
    return _run(p, log, p.args["container_id"], os.path.abspath(o["bundle"] or "."), o["keep"])


def _run_image(p: Parsed, log: Log) -> int:
    """The docker-like form: a snapshot of the image as the bundle; the container stays after
    it exits unless --rm (then it goes with its snapshot)."""
    from runtime import image_bundle

    o = p.options
    if o["bundle"]:
        raise PycontainerError("--bundle: not with --image (the image makes the bundle)")
    if o["rm"] and o["detach"]:
        raise PycontainerError("--rm: not with --detach (nothing would remain to remove it)")
    container_id = o["name"] or image_bundle.new_id()
    command = [p.args["container_id"], *p.args["command"]] if p.args["container_id"] else []
    root = image_bundle.image_root(p.globals)
    overrides = image_bundle.Overrides(o["env"], o["memory"], o["cpus"], o["network"], o["tty"])
    bundle = image_bundle.create(root, container_id, o["image"], command, overrides)
    try:
        status = _run(p, log, container_id, bundle, keep=not o["rm"])
    except BaseException:
        if not os.path.exists(os.path.join(p.globals["root"], container_id)):
            image_bundle.remove(root, container_id)
        raise
    if o["rm"]:
        image_bundle.remove(root, container_id)
    return status


def _run(p: Parsed, log: Log, container_id: str, bundle: str, keep: bool) -> int:
    o = p.options
    root, detach = p.globals["root"], o["detach"]
    config = config_mod.load(bundle)
    check_terminal(config, o["console_socket"], detached=detach)
    console, ours = _console(config, o["console_socket"])
    relay = None
    if not detach:
        foreground.become_subreaper(Syscalls())
        relay = foreground.SignalRelay()
    try:
        state = launcher.create(root, container_id, config,
                                create_options(p, console.fileno() if console else -1, log))
    finally:
        if console is not None:
            console.close()
    c = Container.load(root, container_id)
    master = -1
    try:
        if ours is not None:
            from runtime.console import receive_master

            master = receive_master(ours)
            ours.close()
        container_mod.start(c, log)
    except BaseException:
        c.destroy(log)
        raise
    c.state_dir.unlock()
    if detach:
        return 0
    status = foreground.wait(state.pid, relay, master)
    c.state_dir.lock()
    if not config.new_namespace("pid"):
        # Without a PID namespace of its own, the init's end does not end the rest.
        c.cgroup().kill_all(9)  # SIGKILL
    if not keep:
        c.destroy(log)
    return status


def _console(config: config_mod.Config, console_socket: str | None):
    """(socket the init sends its pty on, our end when we hold the terminal ourselves)."""
    if console_socket:
        return connect_console(console_socket), None
    # No process is refused by the launcher, which judges it for create and run alike.
    if config.process is not None and config.process.terminal:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return theirs, ours
    return None, None
