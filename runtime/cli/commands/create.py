from __future__ import annotations

import os

from runtime import config as config_mod, launcher
from runtime.cli.lean_parser import Parsed
from runtime.errors import PycontainerError
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    o = p.options
    config = config_mod.load(os.path.abspath(o["bundle"] or "."))
    check_terminal(config, o["console_socket"], detached=True)
    console = connect_console(o["console_socket"]) if o["console_socket"] else None
    try:
        launcher.create(p.globals["root"], p.args["container_id"], config,
                        create_options(p, console.fileno() if console else -1, log))
    finally:
        if console is not None:
            console.close()
    return 0


def create_options(p: Parsed, console_fd: int, log: Log) -> launcher.CreateOptions:
    o = p.options
    return launcher.CreateOptions(
        pid_file=o["pid_file"], console_fd=console_fd, no_pivot=o["no_pivot"],
        no_new_keyring=o["no_new_keyring"], preserve_fds=o["preserve_fds"],
        systemd_cgroup=p.globals["systemd_cgroup"], warn=log.warning)


def check_terminal(config: config_mod.Config, console_socket: str | None, detached: bool) -> None:
    terminal = config.process is not None and config.process.terminal
    if terminal and detached and not console_socket:
        raise PycontainerError("process.terminal: a detached container with a terminal needs "
                               "--console-socket to send the terminal to")
    if console_socket and not terminal:
        raise PycontainerError("--console-socket: given, but process.terminal is false")


def connect_console(path: str):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PycontainerError(f"--console-socket: cannot connect to {path}: {e.strerror}") from None
    return sock
