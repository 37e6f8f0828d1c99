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
    profile = _seccomp_profile(container)
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


def birth_place(container: Container) -> tuple[int, int]:
    """For a caller that forks the processes itself (fork_born_in) and has each become() the
    exec'd one: descriptors of the container's PID namespace (-1 when it is the caller's own)
    and of its cgroup2 directory (-1 where there is none), to keep and close in the end."""
    path = _namespaces_to_join(container).get("pid")
    pid_ns = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path else -1
    cgroup_fd = container.cgroup().clone_into_fd()
    return pid_ns, -1 if cgroup_fd is None else cgroup_fd


def fork_born_in(syscalls: Syscalls, pid_ns: int, cgroup_fd: int) -> int:
    """A child of this (single-threaded) process born in the PID namespace and the cgroup2
    directory of birth_place, not dumpable (see spawn) until its execve; 0 in the child. The
    caller's own PID namespace and dumpable flag are as before in the end."""
    own_pid_ns = -1
    if pid_ns >= 0:
        own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(pid_ns, lx.CLONE_NEWPID)
        except OSError:
            os.close(own_pid_ns)
            raise
    syscalls.prctl(lx.PR_SET_DUMPABLE, 0)
    pid = -1
    try:
        pid = namespaces.clone_child(syscalls, 0, os.dup(cgroup_fd) if cgroup_fd >= 0 else None,
                                     own_pid_ns)
    finally:
        if pid != 0:
            syscalls.prctl(lx.PR_SET_DUMPABLE, 1)
    return pid


def become(container: Container, process: Process, report: sync.Channel) -> None:
    """Makes this process, born through fork_born_in, the exec's process: the container's cgroup
    and other namespaces, the process's settings, execve. Never returns: warnings and the error
    that stops it (then it exits 1) go to `report` as sync messages; it closes at the execve."""
    syscalls = Syscalls()
    try:
        paths = _namespaces_to_join(container)
        if "pid" in paths:
            raise PycontainerError("exec: not born in the container's PID namespace")
        profile = _seccomp_profile(container)
        stub_fd = exec_stub.sealed_copy()
    except BaseException as e:  # noqa: BLE001 - reported as one line
        report.send(sync.ERROR, str(e))
        os._exit(1)
    _child(syscalls, container.cgroup(), paths, process, profile, report, -1, 0, stub_fd)


def _seccomp_profile(container: Container) -> seccomp.Profile | None:
    raw = (container.state.config.get("linux") or {}).get("seccomp")
    return seccomp.parse(raw) if raw else None


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
