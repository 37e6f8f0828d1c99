"""The runtime's side of `exec`: a new process in a running container's namespaces and cgroup.

The process is our child, born in the container's PID namespace (we enter it for our children
only, just for that fork, then go back) and, where the kernel can, in its cgroup; it joins the
rest itself and execs. It reports an error or, by closing its close-on-exec pipe at execve,
success.

Two ways: `spawn`, the command line's, forks this interpreter, whose child builds the process
from the spec and the command line's flags (a terminal, --user, --cap...); `spawn_planned`, a
shim's (exec probes: every few seconds in every pod), makes the process in C from the
container's exec plan (runtime/exec_plan.py): no fork of Python, no import and nothing
compiled per exec.
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime import capabilities, exec_plan, exec_stub, namespaces, seccomp, sync
from runtime.config import Process
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.exec_plan import ExecPlan
from runtime.init import container_init, process_setup


def spawn(container: Container, process: Process, console_fd: int, preserve_fds: int,
          warn) -> int:
    """Starts `process` in `container`; returns its PID once it has exec'd."""
    syscalls = Syscalls()
    paths = _namespaces_to_join(container)
    cgroup = container.cgroup()
    program = _seccomp_program(container)
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
            _child(syscalls, cgroup, paths, process, program, writer, console_fd, preserve_fds,
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
    """For a caller that makes the processes itself (spawn_planned): descriptors of the
    container's PID namespace (-1 when it is the caller's own) and of its cgroup2 directory
    (-1 where there is none), to keep and close in the end."""
    path = _namespaces_to_join(container).get("pid")
    pid_ns = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path else -1
    cgroup_fd = container.cgroup().clone_into_fd()
    return pid_ns, -1 if cgroup_fd is None else cgroup_fd


def spawn_planned(plan: ExecPlan, args: list[str], env: list[str], cwd: str | None,
                  stdio: tuple[int, int, int], report_fd: int, birth: tuple[int, int]) -> int:
    """Starts `args` in the container of `plan`, with the container process's environment
    (`env`, NAME=VALUE entries, over it) and cwd (or `cwd`), these descriptors as 0, 1 and 2;
    returns its PID. It is made in C (linux/exec_child.c), born where `birth` says
    (birth_place), with no fork of this interpreter: what fails there (a missing executable)
    and warnings reach `report_fd` as sync messages, which closes at the execve. OSError when
    no process could be made."""
    from linux._native import ffi, lib

    keep = []  # what the C structure points to, alive until the call returns

    def strings(items: list[str], room: int = 0):
        buffers = [ffi.new("char[]", item.encode()) for item in items]
        keep.append(buffers)
        array = ffi.new("char *[]", [*buffers, *[ffi.NULL] * (room + 1)])
        keep.append(array)
        return array

    x = ffi.new("struct pyc_exec *")
    x.stdio = stdio
    x.report_fd = report_fd
    x.pid_ns_fd, x.cgroup_fd = birth
    x.cgroup_files = strings([path for path, _ in plan.cgroup_files])
    x.cgroup_required = _ints(keep, ffi, [required for _, required in plan.cgroup_files])
    kinds = [k for k in namespaces.JOIN_ORDER if k in plan.namespaces]
    x.ns_kinds = strings(kinds)
    x.ns_paths = strings([plan.namespaces[k] for k in kinds])
    x.ns_own = strings([f"/proc/self/ns/{namespaces.PROC_FILES[k]}" for k in kinds])
    x.ns_types = _ints(keep, ffi, [namespaces.CLONE_FLAGS[k] for k in kinds])
    x.userns = kinds.index("user") if "user" in kinds else -1
    x.argv = strings(["3", "", *args])  # [1]: the executable, found in the container
    merged = dict(entry.split("=", 1) for entry in plan.env if "=" in entry)
    merged.update(entry.split("=", 1) for entry in env)
    x.envp = strings([f"{k}={v}" for k, v in merged.items()], room=1)
    x.home = home = ffi.new("char[]", 4096)
    keep.append(home)
    x.home_size = 4096
    x.cwd = work_dir = ffi.new("char[]", (cwd or plan.cwd).encode())
    keep.append(work_dir)
    x.nrlimits = len(plan.rlimits)
    x.rlimit_kinds = _ints(keep, ffi, [kind for kind, _, _ in plan.rlimits])
    values = ffi.new("uint64_t[]", [v for _, soft, hard in plan.rlimits for v in (soft, hard)])
    keep.append(values)
    x.rlimit_values = values
    x.uid, x.gid = plan.uid, plan.gid
    x.ngroups = len(plan.additional_gids)
    groups = ffi.new("uint32_t[]", plan.additional_gids)
    keep.append(groups)
    x.groups = groups
    x.umask = -1 if plan.umask is None else plan.umask
    caps = plan.capabilities
    x.has_caps = caps is not None
    if caps is not None:
        x.bounding, x.effective, x.permitted, x.inheritable = (
            _mask(caps.bounding), _mask(caps.effective), _mask(caps.permitted),
            _mask(caps.inheritable))
        x.last_cap = plan.last_cap
        x.ambient = _ints(keep, ffi, [*caps.ambient, -1])
        x.ambient_names = strings([capabilities.NAMES[c] if c < len(capabilities.NAMES)
                                   else str(c) for c in caps.ambient])
    x.no_new_privs = plan.no_new_privileges
    if plan.seccomp is not None:
        program = ffi.from_buffer(plan.seccomp.bpf)
        keep.append(program)
        x.seccomp = program
        x.seccomp_len = len(plan.seccomp.bpf) // 8
        x.seccomp_flags = plan.seccomp.flags
    x.stub_fd = exec_stub.sealed_copy()
    try:
        pid = lib.pyc_exec_spawn(x)
        if pid < 0:
            error = ffi.errno
            raise OSError(error, f"exec: {os.strerror(error)}")
        return pid
    finally:
        os.close(x.stub_fd)


def _ints(keep: list, ffi, values: list[int]):
    array = ffi.new("int[]", values)
    keep.append(array)
    return array


def _mask(caps: list[int]) -> int:
    return sum(1 << c for c in set(caps))


def _seccomp_program(container: Container) -> seccomp.Program | None:
    return exec_plan.load(container.state_dir.root, container.id).seccomp


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
           program: seccomp.Program | None, writer: sync.Channel, console_fd: int,
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
        early, late = seccomp.timing(program, process.no_new_privileges)
        path, env = container_init.prepare_process(
            syscalls, process, preserve_fds, early,
            keep={writer.fd, stub_fd},
            warn=lambda message: writer.send(sync.WARNING, message))
        process_setup.execute(syscalls, path, process.args, env, late, stub_fd, writer.fd)
    except BaseException as e:  # noqa: BLE001
        writer.send(sync.ERROR, str(e))
    os._exit(1)
