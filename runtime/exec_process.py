"""The runtime's side of `exec`: a new process in a running container's namespaces and cgroup.

The process is our child, born in the container's PID namespace (we enter it for our children
only, just for that fork, then go back) and, where the kernel can, in its cgroup; it joins the
rest itself and execs. It reports an error or, by closing its close-on-exec pipe at execve,
success. One fork of this interpreter per exec, not two: their page-table copies and exits are
most of what an exec probe costs.
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime import exec_stub, namespaces, seccomp, sync
from runtime.config import Process
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.init import container_init, process_setup


def spawn(container: Container, process: Process, console_fd: int, preserve_fds: int,
          warn) -> int:
    """Starts `process` in `container`; returns its PID once it has exec'd."""
    syscalls = Syscalls()
    paths = _namespaces_to_join(container)
    cgroup = container.cgroup()
    raw_seccomp = (container.state.config.get("linux") or {}).get("seccomp")
    profile = seccomp.parse(raw_seccomp) if raw_seccomp else None
    if process.terminal:
        # Imported before the process enters the container's mount namespace, where the host's
        # Python library is out of sight.
        from runtime.init import terminal  # noqa: F401
    reader, writer = sync.pair()
    cgroup_fd = cgroup.clone_into_fd()  # born in the cgroup where it can be, see Cgroup.add_self
    # Inherited by the child: nothing in the container may ptrace it or open its /proc files
    # (exe, fds, memory) before it has exec'd (CVE-2016-9962, CVE-2019-5736).
    syscalls.prctl(lx.PR_SET_DUMPABLE, 0)
    stub_fd = exec_stub.sealed_copy()
    own_pid_ns = namespaces.enter_pid_namespace_for_children(syscalls, paths.pop("pid", None),
                                                             "exec")
    pid = namespaces.clone_child(syscalls, 0, cgroup_fd, own_pid_ns)
    if pid == 0:
        try:
            reader.close()
            _child(syscalls, cgroup, paths, process, profile, writer, console_fd, preserve_fds,
                   stub_fd)
        finally:
            os._exit(1)
    os.close(stub_fd)
    writer.close()
    error = ""
    try:
        while (message := reader.receive()) is not None:
            if message[0] == sync.ERROR:
                error = message[1]
            elif message[0] == sync.WARNING:
                warn(message[1])
    finally:
        reader.close()
    if error:
        os.waitpid(pid, 0)
        raise PycontainerError(error)
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


def _child(syscalls: Syscalls, cgroup, paths: dict[str, str], process: Process,
           profile: seccomp.Profile | None, writer: sync.Channel, console_fd: int,
           preserve_fds: int, stub_fd: int) -> None:
    """The process, from its fork to its exec: the container's cgroup and namespaces (its user
    namespace first, as the others may belong to it), then the process's own settings."""
    try:
        cgroup.add_self()
        # All of them opened before the first setns: once in the container's user namespace,
        # we may no longer open the (non-dumpable) init's /proc/PID/ns files.
        container_init.join_namespaces(syscalls, paths)
    except BaseException as e:  # noqa: BLE001 - reported as one line to the runtime
        writer.send(sync.ERROR, f"exec: {e}")
        os._exit(1)
    try:
        if process.terminal:
            from runtime.init import terminal

            os.setsid()
            terminal.setup_in_container(syscalls, console_fd, process.console_size,
                                        bind_console=False)
        early, late = seccomp.timing(profile, process.no_new_privileges)
        path, env = container_init.prepare_process(
            syscalls, process, preserve_fds, early and seccomp.Filter(early),
            keep={writer.fd, stub_fd},
            warn=lambda message: writer.send(sync.WARNING, message))
        process_setup.execute(path, process.args, env, late and seccomp.Filter(late), stub_fd,
                              writer.fd)
    except BaseException as e:  # noqa: BLE001
        writer.send(sync.ERROR, str(e))
    os._exit(1)
