from __future__ import annotations

import os

from runtime import config as config_mod, container as container_mod, foreground, launcher
from runtime.cli_parse import Parsed
from runtime.commands.create import check_terminal, connect_console, create_options
from runtime.container import Container
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    o = p.options
    root, container_id, detach = p.globals["root"], p.args["container_id"], o["detach"]
    config = config_mod.load(os.path.abspath(o["bundle"] or "."))
    check_terminal(config, o["console_socket"], detached=detach)
    console, ours = _console(config, o["console_socket"])
    if not detach:
        foreground.become_subreaper()
    try:
        state = launcher.create(root, container_id, config,
                                create_options(p, console.fileno() if console else -1))
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
    status = foreground.wait(state.pid, master)
    c.state_dir.lock()
    if not config.new_namespace("pid"):
        # Without a PID namespace of its own, the init's end does not end the rest.
        c.cgroup().kill_all(9)  # SIGKILL
    if not o["keep"]:
        c.destroy(log)
    return status


def _console(config: config_mod.Config, console_socket: str | None):
    """(socket the init sends its pty on, our end when we hold the terminal ourselves)."""
    if console_socket:
        return connect_console(console_socket), None
    if config.process.terminal:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return theirs, ours
    return None, None
