from __future__ import annotations

from runtime import config as config_mod, exec_process, fastjson, foreground, launcher
from runtime.cli.lean_parser import Parsed
from runtime.cli.commands.create import connect_console
from runtime.container import CREATED, RUNNING, Container
from runtime.errors import ConfigError, PycontainerError, StateError
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    o = p.options
    c, process = _container_and_process(p)
    if process.terminal and o["detach"] and not o["console_socket"]:
        raise PycontainerError("--tty: a detached exec with a terminal needs --console-socket")
    if o["console_socket"] and not process.terminal:
        raise PycontainerError("--console-socket: given, but the process has no terminal")
    console = ours = None
    if o["console_socket"]:
        console = connect_console(o["console_socket"])
    elif process.terminal:
        import socket

        ours, console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    relay = None if o["detach"] else foreground.SignalRelay()
    try:
        pid = exec_process.spawn(c, process, console.fileno() if console else -1,
                                 o["preserve_fds"], log.warning)
    finally:
        if console is not None:
            console.close()
    if o["pid_file"]:
        launcher.write_pid_file(o["pid_file"], pid)
    if o["detach"]:
        return 0
    master = -1
    if ours is not None:
        from runtime.console import receive_master

        master = receive_master(ours)
        ours.close()
    return foreground.wait(pid, relay, master)


def _container_and_process(p: Parsed) -> tuple[Container, config_mod.Process]:
    c = Container.load(p.globals["root"], p.args["container_id"], lock=False)
    status = c.status()
    if status not in (RUNNING, CREATED):
        raise StateError(f"cannot exec in a {status} container")
    return c, build_process(p, c.state.config.get("process") or {})


def build_process(p: Parsed, base: dict) -> config_mod.Process:
    """The process from --process, or from the command and flags over the container's own
    process (as runc does: its env, cwd, user, capabilities and rlimits are the defaults)."""
    o = p.options
    for flag in ("apparmor", "process_label"):
        if o[flag]:
            raise PycontainerError(f"--{flag.replace('_', '-')}: not available on this host")
    if o["process"]:
        try:
            with open(o["process"], "rb") as f:
                raw = fastjson.loads(f.read())
        except OSError as e:
            raise ConfigError("--process", f"cannot read {o['process']}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError("--process", f"{o['process']} is not valid JSON: {e}") from None
        return config_mod.parse_process(raw, "process")
    if not p.args["command"]:
        raise PycontainerError("exec: a command (or --process) is required")
    raw = dict(base)
    raw["args"] = p.args["command"]
    raw["terminal"] = o["tty"]
    raw.pop("consoleSize", None)
    env = dict(e.split("=", 1) for e in base.get("env", []) if "=" in e)
    for entry in o["env"]:
        if "=" not in entry:
            raise PycontainerError(f"--env: must be NAME=VALUE, got {entry!r}")
        name, value = entry.split("=", 1)
        env[name] = value
    raw["env"] = [f"{k}={v}" for k, v in env.items()]
    if o["cwd"]:
        raw["cwd"] = o["cwd"]
    user = dict(base.get("user") or {})
    if o["user"]:
        uid, _, gid = o["user"].partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise PycontainerError(f"--user: must be UID[:GID] in numbers, got {o['user']!r}")
        user["uid"] = int(uid)
        user["gid"] = int(gid) if gid else 0
    if o["additional_gids"]:
        if not all(g.isdigit() for g in o["additional_gids"]):
            raise PycontainerError("--additional-gids: must be numbers")
        user["additionalGids"] = [int(g) for g in o["additional_gids"]]
    raw["user"] = user
    if o["cap"]:
        caps = {k: list(v) for k, v in (base.get("capabilities") or {}).items()}
        # As runc: never inheritable or ambient, so an added capability does not outlive the
        # process's own execve as a non-root user (CVE-2022-29162).
        for kind in ("bounding", "effective", "permitted"):
            caps.setdefault(kind, []).extend(c for c in o["cap"] if c not in caps[kind])
        raw["capabilities"] = caps
    if o["no_new_privs"]:
        raw["noNewPrivileges"] = True
    return config_mod.parse_process(raw, "process")
