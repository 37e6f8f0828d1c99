"""The container's init: what runs in the child of clone() until it execs the user process.

It talks to the runtime over two pipes (runtime.sync): it waits for GO (ID maps written), later
for JOINED (its oom_score_adj written), asks for the runtime-namespace hooks, reports READY or the error that
stopped it, then waits on exec.fifo for `start`.
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime import fastjson, hooks, seccomp, sync
from runtime.config import Config, Process
from runtime.errors import ConfigError, PycontainerError
from runtime.init import devices, process_setup, rootfs
from runtime.namespaces import CLONE_FLAGS, JOIN_ORDER

class InitContext:
    __slots__ = ("syscalls", "container_id", "exec_fifo_fd", "from_parent", "to_parent",
                 "console_fd", "preserve_fds", "no_pivot", "new_keyring", "cgroup_dirs",
                 "join_cgroup", "state", "joined", "stub_fd", "seccomp_program")

    def __init__(self, syscalls: Syscalls, container_id: str, exec_fifo_fd: int,
                 from_parent: sync.Channel, to_parent: sync.Channel, console_fd: int,
                 preserve_fds: int, no_pivot: bool, new_keyring: bool,
                 cgroup_dirs: dict[str, str], join_cgroup, stub_fd: int,
                 seccomp_program: seccomp.Program | None) -> None:
        self.syscalls = syscalls
        self.container_id = container_id
        # O_PATH, opened by the runtime: the state dir may be out of reach of the container's
        # user, and a descriptor of the directory itself would lead out of the container.
        self.exec_fifo_fd = exec_fifo_fd
        self.from_parent = from_parent
        self.to_parent = to_parent
        self.console_fd = console_fd
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot
        self.new_keyring = new_keyring
        self.cgroup_dirs = cgroup_dirs
        self.join_cgroup = join_cgroup  # Cgroup.add_self: the init moves itself
        self.state: dict = {}  # the OCI state for the hooks run in here, sent with GO
        self.joined = False  # the runtime has done its part (JOINED)
        self.stub_fd = stub_fd  # the sealed exec stub, see runtime/exec_stub.py
        # linux.seccomp, compiled by the runtime (once: every exec loads the same program)
        self.seccomp_program = seccomp_program


def run_container_init(config: Config, ctx: InitContext) -> None:
    """Never returns: execs the user process or exits non-zero after reporting why."""
    ready = False
    try:
        early, late = seccomp.timing(ctx.seccomp_program, config.process.no_new_privileges)
        path, env = _prepare(config, ctx, early)
        ctx.to_parent.send(sync.READY)
        ready = True
        ctx.to_parent.close()
        started = _wait_for_start(ctx)
        hooks.run("startContainer", config.hooks.get("startContainer", []),
                  {**ctx.state, "status": "created"})
        process_setup.execute(ctx.syscalls, path, config.process.args, env, late, ctx.stub_fd,
                              started)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the runtime as one line
        _fail(ctx.to_parent, e, ready)


def _fail(channel: sync.Channel, error: BaseException, reported_ready: bool) -> None:
    message = _describe(error)
    if reported_ready:
        # create has returned already: the container's stderr is all that is left to tell.
        os.write(2, f"pycontainer: {message}\n".encode())
        os._exit(127)
    try:
        channel.send(sync.ERROR, message)
    finally:
        os._exit(1)


def _describe(error: BaseException) -> str:
    if isinstance(error, PycontainerError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}" if not error.filename else str(error)
    return f"{type(error).__name__}: {error}"


def _prepare(config: Config, ctx: InitContext,
             early_seccomp: seccomp.Program | None) -> tuple[str, dict[str, str]]:
    syscalls = ctx.syscalls
    # First of all: whatever the init makes from here on (memory, children) is the container's.
    ctx.join_cgroup()
    # Then nothing of the runtime's stays open in here but what the init itself needs.
    process_setup.close_fds_except(3 + ctx.preserve_fds, {
        ctx.from_parent.fd, ctx.to_parent.fd, ctx.exec_fifo_fd, ctx.console_fd, ctx.stub_fd})
    ctx.state = fastjson.loads(_await(ctx, sync.GO))
    if config.new_namespace("user"):
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    join_namespaces(syscalls, {k: v for k, v in config.namespaces.items() if v and k != "pid"})
    # A cgroup2 mount shows the cgroup namespace's root: it must exist before the mounts.
    _enter_cgroup(config, ctx)
    if config.hostname:
        syscalls.sethostname(config.hostname)
    if config.domainname:
        syscalls.setdomainname(config.domainname)
    if ctx.new_keyring:
        _join_keyring(syscalls, ctx.container_id)
    os.setsid()

    process = config.process
    own_dev = mount_rootfs(syscalls, config, ctx.cgroup_dirs)
    if config.hooks.get("prestart") or config.hooks.get("createRuntime"):
        ctx.to_parent.send(sync.HOOKS)
        _await(ctx, sync.HOOKS_DONE)
    hooks.run("createContainer", config.hooks.get("createContainer", []), ctx.state)
    ctx.from_parent.close()

    # Past pivot_root the host's Python library is gone: import now what comes after.
    if process.terminal:
        from runtime.init import terminal
    if config.hooks.get("startContainer"):
        hooks.preload()
    enter_root(syscalls, config, ctx.no_pivot)
    if process.terminal:
        terminal.setup_in_container(syscalls, ctx.console_fd, process.console_size,
                                    bind_console=own_dev)
    rootfs.finalize(syscalls, config, "/")
    if not os.path.exists(f"/proc/self/fd/{ctx.exec_fifo_fd}"):
        raise PycontainerError("mounts: the container needs /proc mounted (procfs) to wait "
                               "for start")
    return prepare_process(syscalls, process, ctx.preserve_fds, early_seccomp,
                           keep={ctx.to_parent.fd, ctx.exec_fifo_fd, ctx.stub_fd},
                           warn=lambda message: ctx.to_parent.send(sync.WARNING, message))


def mount_rootfs(syscalls: Syscalls, config: Config, cgroup_dirs: dict[str, str]) -> bool:
    """The container's filesystems, before the hooks run: the rootfs made a mount point cut off
    from the host's mount events (with a mount namespace of its own), the config's mounts, the
    working directory, /dev. Returns whether /dev is the container's own."""
    if config.has_namespace("mount"):
        rootfs.prepare(syscalls, config)
    else:
        _refuse_without_mount_namespace(config)
    rootfs.mount_all(syscalls, config, cgroup_dirs)
    cwd = config.process.cwd
    try:
        rootfs.make_cwd(config, cwd)
    except OSError as e:
        raise ConfigError("process.cwd", f"{cwd}: {e.strerror}") from None
    own_dev = devices.owns_dev(config)
    if own_dev:
        devices.populate(syscalls, config, in_user_namespace=config.has_namespace("user"))
    return own_dev


def enter_root(syscalls: Syscalls, config: Config, no_pivot: bool) -> None:
    """Makes the rootfs this process's "/"."""
    if not config.has_namespace("mount"):
        # As runc: pivot_root or a move of "/" would change the caller's own mount namespace.
        _chroot(syscalls, config.root_path)
    elif no_pivot:
        rootfs.move_root(syscalls, config.root_path)
    else:
        rootfs.pivot(syscalls, config.root_path)


def _refuse_without_mount_namespace(config: Config) -> None:
    """What only a mount namespace of its own can give; in the caller's, it would remount the
    caller's files (runc refuses the masks the same way)."""
    for field, wanted in (("linux.maskedPaths", config.masked_paths),
                          ("linux.readonlyPaths", config.readonly_paths),
                          ("root.readonly", config.root_readonly)):
        if wanted:
            raise ConfigError(field, "needs a mount namespace of the container's own "
                              "(linux.namespaces has no \"mount\")")


def _chroot(syscalls: Syscalls, root: str) -> None:
    os.chdir(root)
    syscalls.chroot(".")
    os.chdir("/")


def _await(ctx: InitContext, tag: str) -> str:
    """The payload of the runtime's next `tag` message; JOINED may arrive in between."""
    while True:
        message = ctx.from_parent.receive()
        if message is None:
            os._exit(1)  # the runtime went away: nobody to report to
        if message[0] == sync.JOINED:
            ctx.joined = True
            if tag != sync.JOINED:
                continue
        if message[0] != tag:
            raise PycontainerError(f"internal: expected {tag!r} from the runtime, got {message[0]!r}")
        return message[1]


def _enter_cgroup(config: Config, ctx: InitContext) -> None:
    """Waits until the runtime has done its part (JOINED), then gives the container its own
    cgroup namespace, rooted at the cgroup the init has joined."""
    if not ctx.joined:
        _await(ctx, sync.JOINED)
    if config.new_namespace("cgroup"):
        ctx.syscalls.unshare(lx.CLONE_NEWCGROUP)


def prepare_process(syscalls: Syscalls, process: Process, preserve_fds: int,
                    early_seccomp: seccomp.Program | None = None, *, keep: set[int],
                    warn) -> tuple[str, dict[str, str]]:
    """User, capabilities, rlimits, cwd, environment; returns the executable and environment.
    Shared by init and `exec`. `early_seccomp`: the program to load while still privileged; `keep`:
    our own descriptors still needed until execve (close-on-exec); `warn`: where to report
    what does not fail the start."""
    # Before the cwd is looked up: no descriptor of the host may be there to resolve it
    # through (a cwd of /proc/self/fd/N, CVE-2024-21626).
    process_setup.close_fds_except(3 + preserve_fds, keep)
    process_setup.set_rlimits(process)
    in_cwd = process_setup.chdir(process.cwd)
    env = process_setup.environment(process)
    path = process_setup.find_executable(process.args[0], env)
    if early_seccomp is not None:
        early_seccomp.load(syscalls)
    process_setup.switch_user(syscalls, process, _setgroups_allowed(), warn)
    if not in_cwd and not process_setup.chdir(process.cwd):
        raise PycontainerError(f"process.cwd: {process.cwd}: permission denied")
    process_setup.check_cwd_inside_root(process.cwd)
    for fd in range(3, 3 + preserve_fds):
        os.set_inheritable(fd, True)
    return path, env


def _setgroups_allowed() -> bool:
    """False in a user namespace whose setgroups was denied (setgroups(2) would fail)."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def join_namespaces(syscalls: Syscalls, paths: dict[str, str]) -> None:
    """setns into each namespace given by path, in JOIN_ORDER."""
    fds = []
    try:
        for kind in JOIN_ORDER:
            if kind in paths:
                try:
                    fds.append((kind, os.open(paths[kind], os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise PycontainerError(f"linux.namespaces: {kind} {paths[kind]}: {e.strerror}") from None
        for kind, fd in fds:
            try:
                syscalls.setns(fd, CLONE_FLAGS.get(kind, 0))
            except OSError as e:
                raise PycontainerError(f"linux.namespaces: join {kind} {paths[kind]}: {e.strerror}") from None
    finally:
        for _, fd in fds:
            os.close(fd)


def _join_keyring(syscalls: Syscalls, container_id: str) -> None:
    try:
        syscalls.join_session_keyring(f"_ses.{container_id}")
    except OSError as e:
        # No keyring support (ENOSYS) or none allowed here (EACCES under some LSMs): runc
        # carries on too; the container simply shares no keys.
        if e.errno not in (38, 13):
            raise


def _wait_for_start(ctx: InitContext) -> int:
    """Blocks until `start` opens exec.fifo for reading. The fifo is reopened for writing
    through our O_PATH descriptor, as runc does: that needs the container's /proc.

    Returns the written end, for the exec stub to report on: it closes at the user's execve
    (or carries the error of that execve), and `start` reads the fifo to its end, so that
    it returns once this process is the user's, as runc's does. Were it closed here, `start`
    would return while the init still ran Python or the stub: a `state` then said running
    for a process that was not the user's yet, and a signal sent then (`kill`) hit the init
    instead of the user's process, whose handlers it never reached."""
    fd = os.open(f"/proc/self/fd/{ctx.exec_fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.close(ctx.exec_fifo_fd)
    os.write(fd, b"0")
    return fd
