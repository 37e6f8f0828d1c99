"""The runtime's side of `exec`: a new process in a running container's namespaces and cgroup.

A short-lived helper joins the container's cgroup and namespaces, then clones the process with
CLONE_PARENT, so that the process is our child (and the caller's, or its subreaper's, once we
return), as with runc. The helper reports the PID; the process reports an error or, by closing
its close-on-exec pipe at execve, success.
"""
from __future__ import annotations

import os

from runtime import init, namespaces, process_setup, seccomp, sync, syscalls
from runtime.config import Process
from runtime.container import Container
from runtime.errors import PycontainerError

CLONE_PARENT = 0x00008000


def spawn(container: Container, process: Process, console_fd: int, preserve_fds: int) -> int:
    """Starts `process` in `container`; returns its PID once it has exec'd."""
    paths = _namespaces_to_join(container)
    cgroup = container.cgroup()
    raw_seccomp = (container.state.config.get("linux") or {}).get("seccomp")
    profile = seccomp.parse(raw_seccomp) if raw_seccomp else None
    if process.terminal:
        # Imported before the helper enters the container's mount namespace, where the host's
        # Python library is out of sight.
        from runtime import console  # noqa: F401
    reader, writer = sync.pair()
    cgroup_fd = cgroup.clone_into_fd()  # born in the cgroup where it can be, see Cgroup.add_self
    try:
        helper = os.fork() if cgroup_fd is None else syscalls.clone_into(0, cgroup_fd)
    finally:
        if cgroup_fd is not None:
            os.close(cgroup_fd)
    if helper == 0:
        try:
            reader.close()
            _helper(cgroup, paths, process, profile, writer, console_fd, preserve_fds)
        finally:
            os._exit(1)
    writer.close()
    pid = 0
    error = ""
    try:
        while (message := reader.receive()) is not None:
            tag, payload = message
            if tag == sync.PID:
                pid = int(payload)
            elif tag == sync.ERROR:
                error = payload
    finally:
        reader.close()
        os.waitpid(helper, 0)
    if error or not pid:
        if pid:
            os.waitpid(pid, 0)
        raise PycontainerError(error or "exec: the helper process died before starting the process")
    return pid


def _namespaces_to_join(container: Container) -> dict[str, str]:
    """The init's namespaces that differ from ours (joining one's own namespace is refused for
    some types and pointless for all)."""
    result = {}
    for kind, path in container.state.namespace_paths.items():
        own = f"/proc/self/ns/{namespaces.PROC_FILES[kind]}"
        try:
            theirs = os.stat(path)
        except FileNotFoundError:
            raise PycontainerError(f"container {container.id} is not running") from None
        mine = os.stat(own)
        if (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino):
            result[kind] = path
    return result


def _helper(cgroup, paths: dict[str, str], process: Process, profile: seccomp.Profile | None,
            writer: sync.Channel, console_fd: int, preserve_fds: int) -> None:
    try:
        cgroup.add_self()
        pid_path = paths.pop("pid", None)
        if "user" in paths:
            init.join_namespaces({"user": paths.pop("user")})
        if pid_path:
            fd = os.open(pid_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                syscalls.setns(fd, syscalls.CLONE_NEWPID)
            finally:
                os.close(fd)
        init.join_namespaces(paths)
        pid = syscalls.clone(CLONE_PARENT)
    except BaseException as e:  # noqa: BLE001 - reported as one line to the runtime
        writer.send(sync.ERROR, f"exec: {e}")
        os._exit(1)
    if pid == 0:
        _process(process, profile, writer, console_fd, preserve_fds)
    writer.send(sync.PID, str(pid))
    os._exit(0)


def _process(process: Process, profile: seccomp.Profile | None, writer: sync.Channel,
             console_fd: int, preserve_fds: int) -> None:
    try:
        if process.terminal:
            from runtime import console

            os.setsid()
            console.setup_in_container(console_fd, process.console_size, bind_console=False)
        early, late = seccomp.timing(profile, process.no_new_privileges)
        path, env = init.prepare_process(process, preserve_fds, early and seccomp.Filter(early))
        process_setup.execute(path, process.args, env, late and seccomp.Filter(late))
    except BaseException as e:  # noqa: BLE001
        writer.send(sync.ERROR, str(e))
    os._exit(1)
