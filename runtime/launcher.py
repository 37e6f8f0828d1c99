"""The runtime's side of `create`: claim the ID, make the cgroup, clone the init with its new
namespaces, map its IDs, answer its hook request, and record the state once it is READY.

On any failure everything made so far is undone before the error goes up: no state directory,
cgroup or process is left behind.
"""
from __future__ import annotations

import os

# _signal: the C module `signal` wraps; `signal` itself builds enums at import (3-4 ms).
import _signal

from linux import constants as lx
from linux.syscalls import Syscalls
from overlay.timefmt import rfc3339_nano
from runtime.init import devices, host_mounts
from runtime import (exec_plan, exec_stub, fastjson, hooks, namespaces, seccomp, state as state_mod,
                     sync)
from runtime.config import Config, IDMapping
from runtime.container import CREATING, OCI_VERSION
from runtime.errors import ConfigError, PycontainerError
from runtime.state import State, StateDir


class CreateOptions:
    __slots__ = ("pid_file", "console_fd", "no_pivot", "no_new_keyring", "preserve_fds",
                 "systemd_cgroup", "warn")

    def __init__(self, pid_file: str | None = None, console_fd: int = -1, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0,
                 systemd_cgroup: bool = False, warn=None) -> None:
        self.pid_file = pid_file
        self.console_fd = console_fd
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        self.warn = warn  # what the init reports but does not fail on (refused ambient caps)


def create(root: str, container_id: str, config: Config, opts: CreateOptions) -> State:
    """Creates the container and returns its state; the init waits on exec.fifo for start."""
    import cgroups

    if config.process is None:
        raise ConfigError("process", "is required to create a container")
    state_dir = StateDir(root, container_id)
    cgroup_path = cgroups.resolve_path(config.cgroups_path, container_id,
                                       systemd=opts.systemd_cgroup)
    hierarchies = cgroups.hierarchies()
    cgroup = cgroups.open_cgroup(cgroup_path, hierarchies)
    resources = cgroup_resources(config)
    cgroup.validate(resources)  # what this host's driver cannot do, before anything exists
    state_dir.create()
    state = State(id=container_id, pid=0, pid_start=0, bundle=config.bundle,
                  rootfs=config.root_path, created=rfc3339_nano(), owner="",
                  annotations=config.annotations, cgroup_path=cgroup_path, config=config.raw,
                  namespace_paths={}, cgroup_hierarchies=hierarchies.to_dict())
    syscalls = Syscalls()
    # The init shares our mount namespace: what it mounts there is ours to remove later.
    mounts_before = None if config.has_namespace("mount") else host_mounts.snapshot()
    try:
        # Saved before anything else exists, so that `delete --force` finds every part even if
        # this process dies halfway.
        state_dir.save(state)
        cgroup.create()
        cgroup.apply(resources)
        state_dir.make_fifo()
        _spawn(syscalls, config, state_dir, state, cgroup, opts)
        if mounts_before is not None:
            state.host_mounts = host_mounts.made_since(mounts_before, config.root_path)
            state_dir.save(state)
        if opts.pid_file:
            write_pid_file(opts.pid_file, state.pid)
        return state
    except BaseException:
        _undo(state, cgroup, state_dir)
        if mounts_before is not None:
            host_mounts.remove(syscalls, host_mounts.made_since(mounts_before, config.root_path))
        raise


def cgroup_resources(config: Config) -> dict:
    """linux.resources with runc's default device rules after the config's own."""
    resources = dict(config.resources)
    resources["devices"] = [*resources.get("devices", []), *devices.DEFAULT_CGROUP_RULES]
    return resources


def _spawn(syscalls: Syscalls, config: Config, state_dir: StateDir, state: State, cgroup,
           opts: CreateOptions) -> None:
    from_child, child_out = sync.pair()
    child_in, to_child = sync.pair()
    flags = 0
    for kind, path in config.namespaces.items():
        if not path and kind != "cgroup":  # the cgroup one comes once the init is in its cgroup
            flags |= namespaces.CLONE_FLAGS[kind]
    # The init holds the exec fifo alone, not its directory: a directory descriptor would be a
    # way out to the host for the container (CVE-2024-21626).
    fifo_fd = os.open(state_dir.fifo, os.O_PATH | os.O_CLOEXEC)
    # Inherited through clone: no process in the container may ptrace the init or open its
    # /proc files (exe, fds, memory) until it has exec'd (CVE-2016-9962, CVE-2019-5736).
    # Compiled once, here: the init loads it, and so does every exec (the exec plan keeps it).
    program = seccomp.compile_profile(config.seccomp) if config.seccomp else None
    syscalls.prctl(lx.PR_SET_DUMPABLE, 0)
    stub_fd = exec_stub.sealed_copy()
    cgroup_fd = cgroup.clone_into_fd()
    own_pid_ns = namespaces.enter_pid_namespace_for_children(syscalls,
                                                             config.namespaces.get("pid", ""))
    pid = namespaces.clone_child(syscalls, flags, cgroup_fd, own_pid_ns)
    if pid == 0:
        try:
            from_child.close()
            to_child.close()
            # Imported here, in the child: the init's modules load while the runtime moves it
            # into its cgroup.
            from runtime.init import container_init

            ctx = container_init.InitContext(
                syscalls=syscalls, container_id=state.id, exec_fifo_fd=fifo_fd,
                from_parent=child_in, to_parent=child_out, console_fd=opts.console_fd,
                preserve_fds=opts.preserve_fds, no_pivot=opts.no_pivot,
                new_keyring=not opts.no_new_keyring,
                cgroup_dirs=cgroup.hierarchy_dirs(), join_cgroup=cgroup.add_self, stub_fd=stub_fd,
                seccomp_program=program)
            container_init.run_container_init(config, ctx)
        finally:
            os._exit(1)
    os.close(fifo_fd)
    os.close(stub_fd)
    child_out.close()
    child_in.close()
    try:
        state.pid = pid
        state.pid_start = state_mod.process_start_time(pid) or 0
        if config.new_namespace("user"):
            _write_id_map(pid, "uid_map", config.uid_mappings)
            _write_id_map(pid, "gid_map", config.gid_mappings)
        oci_state = _oci_state(state, config)
        try:
            to_child.send(sync.GO, fastjson.dumps(oci_state))
            if config.process.oom_score_adj is not None:
                _write_oom_score_adj(pid, config.process.oom_score_adj)
            to_child.send(sync.JOINED)
        except OSError:
            if state_mod.is_alive(pid, state.pid_start):
                raise
            # The init failed already: its own error message is waiting in the pipe.
        # Until the init is READY it dies with this process (EOF on its pipe).
        state.namespace_paths = {kind: f"/proc/{pid}/ns/{namespaces.PROC_FILES[kind]}"
                                 for kind in config.namespaces}
        state_dir.save(state)
        exec_plan.write(state_dir.path, exec_plan.build(
            config.process, state.namespace_paths, cgroup, state.cgroup_path,
            state.cgroup_hierarchies, program))
        _converse(config, from_child, to_child, oci_state, pid, opts.warn)
    finally:
        from_child.close()
        to_child.close()


def _converse(config: Config, from_child: sync.Channel, to_child: sync.Channel, oci_state: dict,
              pid: int, warn) -> None:
    while True:
        message = from_child.receive()
        if message is None:
            raise _early_death(config, pid)
        tag, payload = message
        if tag == sync.READY:
            return
        if tag == sync.ERROR:
            raise PycontainerError(payload)
        if tag == sync.WARNING and warn is not None:
            warn(payload)
        if tag == sync.HOOKS:
            hooks.run("prestart", config.hooks.get("prestart", []), oci_state)
            hooks.run("createRuntime", config.hooks.get("createRuntime", []), oci_state)
            to_child.send(sync.HOOKS_DONE)


def _oci_state(state: State, config: Config) -> dict:
    result = {"ociVersion": OCI_VERSION, "id": state.id, "status": CREATING, "pid": state.pid,
              "bundle": state.bundle}
    if config.annotations:
        result["annotations"] = config.annotations
    return result


def _write_oom_score_adj(pid: int, value: int) -> None:
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
    except PermissionError:
        # Below the current value needs CAP_SYS_RESOURCE, which the caller may not have.
        raise ConfigError("process.oomScoreAdj",
                          f"{value}: not allowed here (lowering it needs CAP_SYS_RESOURCE)") from None


def _write_id_map(pid: int, name: str, mappings: list[IDMapping]) -> None:
    text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
    try:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    except OSError as e:
        field = "linux.uidMappings" if name == "uid_map" else "linux.gidMappings"
        raise ConfigError(field, f"the kernel refused the mapping: {e.strerror}") from None


def _early_death(config: Config, pid: int) -> PycontainerError:
    """Why the init died before READY, naming the field to blame where there is one: a memory
    limit too small for the init itself gets it OOM-killed (runc says the same)."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == _signal.SIGKILL:
        limit = (config.resources.get("memory") or {}).get("limit")
        if isinstance(limit, int) and limit > 0:
            return ConfigError("linux.resources.memory.limit",
                               f"{limit} bytes: the container's init was OOM-killed while "
                               "starting (memory limit too low?)")
    return PycontainerError(f"container init exited before it was ready "
                            f"({describe_wait_status(status)})")


def describe_wait_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        import signal

        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _undo(state: State, cgroup, state_dir: StateDir) -> None:
    if state.pid > 0:
        try:
            os.kill(state.pid, _signal.SIGKILL)
            os.waitpid(state.pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass
    cgroup.destroy()
    state_dir.remove()


def write_pid_file(path: str, pid: int) -> None:
    """The bare number, no newline (the containerd shim refuses "123\\n"), renamed into place so a
    reader never sees a partial file."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)
