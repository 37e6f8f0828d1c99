"""The container's mount namespace: root propagation, the config's mounts, pivot_root, and the
read-only and masked paths. Runs in the container's init, in its new mount namespace.
"""
from __future__ import annotations

import errno
import os
import stat

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime.init import mountfd, procfs, securejoin
from runtime.config import Config, Mount
from runtime.errors import ConfigError

_PROPAGATION = {"shared": lx.MS_SHARED, "slave": lx.MS_SLAVE, "private": lx.MS_PRIVATE,
                "unbindable": lx.MS_UNBINDABLE}


def propagation_flags(name: str) -> int:
    """rootfsPropagation name -> mount flags; runc's default is a recursive slave."""
    if not name:
        return lx.MS_SLAVE | lx.MS_REC
    if name.startswith("r"):
        return _PROPAGATION[name[1:]] | lx.MS_REC
    return _PROPAGATION[name]


def prepare(syscalls: Syscalls, config: Config) -> None:
    """Cuts the new mount namespace off from the host's events (or keeps it a peer of the host's,
    for rootfsPropagation rshared) and makes the rootfs a mount point (pivot_root needs one)."""
    syscalls.mount(None, "/", None, propagation_flags(config.rootfs_propagation))
    # As runc: pivot_root refuses a new root whose parent mount is shared, and the rootfs bound
    # onto itself would travel back to the host. Only the mount holding the rootfs goes private,
    # so a bidirectional volume bound from elsewhere stays a peer of the host's mount.
    point, shared = _mount_holding(config.root_path)
    if shared:
        syscalls.mount(None, point, None, lx.MS_PRIVATE)
    syscalls.mount(config.root_path, config.root_path, None, lx.MS_BIND | lx.MS_REC)


def _mount_holding(path: str) -> tuple[str, bool]:
    """The mount point of the mount `path` is on, and whether that mount is shared."""
    best, shared = "/", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if (path == point or path.startswith(point.rstrip("/") + "/")) \
                    and len(point) >= len(best):
                best = point
                shared = any(tag.startswith("shared:")
                             for tag in fields[6:fields.index("-")])
    return best, shared


def mount_all(syscalls: Syscalls, config: Config, cgroup_dirs: dict[str, str]) -> None:
    """The config's mounts, each resolved inside the rootfs and made onto a descriptor."""
    if not config.mounts:
        return
    root_fd = os.open(config.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in config.mounts:
            try:
                _mount_one(syscalls, config, root_fd, m, cgroup_dirs)
            except OSError as e:
                raise ConfigError(m.field, f"{m.destination}: {e.strerror or e}") from None
    finally:
        os.close(root_fd)


def _mount_one(syscalls: Syscalls, config: Config, root_fd: int, m: Mount,
               cgroup_dirs: dict[str, str]) -> None:
    tree = None
    if m.is_bind:
        tree = syscalls.open_tree(lx.AT_FDCWD, m.source, lx.OPEN_TREE_CLONE |
                                  (lx.AT_RECURSIVE if m.flags & lx.MS_REC else 0))
    try:
        if m.type in ("proc", "sysfs") and tree is None:
            target = _real_directory(root_fd, m)
        else:
            is_dir = tree is None or stat.S_ISDIR(os.fstat(tree).st_mode)
            target = securejoin.walk(root_fd, m.destination, create="dir" if is_dir else "file")
        try:
            _check_destination(syscalls, m, target.path, tree)
            top = _mount_at(syscalls, config, root_fd, m, target, tree, cgroup_dirs)
            tree = None  # top now owns it
            try:
                for flag in m.propagation:
                    mountfd.set_propagation(syscalls, top, flag)
            finally:
                os.close(top)
        finally:
            os.close(target.fd)
    finally:
        if tree is not None:
            os.close(tree)


def _real_directory(root_fd: int, m: Mount) -> securejoin.Found:
    """procfs and sysfs go only on a real directory: a symlink there is refused, not followed
    (CVE-2019-16884, CVE-2023-27561)."""
    target = securejoin.walk(root_fd, m.destination, create="dir", follow_last=False)
    if stat.S_ISDIR(target.st.st_mode):
        return target
    os.close(target.fd)
    what = "a symlink" if stat.S_ISLNK(target.st.st_mode) else "a file"
    raise ConfigError(f"{m.field}.destination", f"{m.destination}: not a directory ({what}); "
                      f"refusing to mount {m.type} there")


def _check_destination(syscalls: Syscalls, m: Mount, inside: str, tree: int | None) -> None:
    if inside == "/":
        raise ConfigError(f"{m.field}.destination", f"{m.destination}: is the container's root "
                          "(after symlinks); refusing to mount over it")
    problem = procfs.destination_problem(syscalls, inside, m.type, tree)
    if problem:
        raise ConfigError(f"{m.field}.destination", problem if inside == m.destination
                          else f"{m.destination} (leads to {problem})")


def _mount_at(syscalls: Syscalls, config: Config, root_fd: int, m: Mount,
              target: securejoin.Found, tree: int | None, cgroup_dirs: dict[str, str]) -> int:
    """Mounts `m` onto `target`; returns a descriptor of the new mount (which owns `tree`)."""
    if tree is not None:
        source_is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
        if stat.S_ISDIR(target.st.st_mode) != source_is_dir:
            raise ConfigError(f"{m.field}.destination", f"{m.destination}: " + (
                "not a directory, and the source is one" if source_is_dir else
                "a directory, and the source is not"))
        syscalls.move_mount(tree, target.fd)
        mountfd.check_visible(syscalls, root_fd, target.path, tree)
        extra = m.flags & ~(lx.MS_BIND | lx.MS_REC | lx.MS_REMOUNT)
        if extra:
            mountfd.remount(syscalls, tree, lx.MS_BIND | extra | (m.flags & lx.MS_REC))
        return tree
    if m.type == "cgroup":
        return _mount_cgroups(syscalls, root_fd, target, m, cgroup_dirs,
                              config.new_namespace("cgroup"))
    if "tmpcopyup" in m.options and stat.S_ISDIR(target.st.st_mode):
        return _mount_tmpfs_copy_up(syscalls, root_fd, target, m)
    return mountfd.mount_new(syscalls, root_fd, target.fd, target.path, m.source or m.type,
                             m.type, m.flags, m.data)


def _mount_tmpfs_copy_up(syscalls: Syscalls, root_fd: int, target: securejoin.Found,
                         m: Mount) -> int:
    """A tmpfs at `target` holding a copy of what the image has there. The image's directory is
    read through a descriptor opened before the tmpfs covers it."""
    image_dir = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target.fd)
    try:
        top = mountfd.mount_new(syscalls, root_fd, target.fd, target.path, m.source or "tmpfs",
                                "tmpfs", m.flags & ~lx.MS_RDONLY, m.data)
        try:
            new_dir = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=top)
            try:
                st = target.st
                os.fchmod(new_dir, stat.S_IMODE(st.st_mode))
                os.fchown(new_dir, st.st_uid, st.st_gid)
                _copy_tree(image_dir, new_dir)
            finally:
                os.close(new_dir)
            if m.flags & lx.MS_RDONLY:
                syscalls.mount(None, mountfd.fd_path(top), None, lx.MS_REMOUNT | m.flags,
                               m.data)
        except BaseException:
            os.close(top)
            raise
    finally:
        os.close(image_dir)
    return top


_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_tree(src: int, dst: int) -> None:
    """Copies the directory `src` into `dst`, both descriptors; symlinks are copied, not
    followed."""
    with os.scandir(src) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, _O_DIR, dir_fd=src)
            try:
                sub_dst = os.open(name, _O_DIR, dir_fd=dst)
                try:
                    _copy_tree(sub_src, sub_dst)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(mode):
            _copy_file(name, src, dst)
        else:  # device nodes, fifos, sockets
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)


def _copy_file(name: str, src_dir: int, dst_dir: int) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst_dir)
        try:
            while chunk := os.read(src, 1 << 16):
                os.write(dst, chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _remount(syscalls: Syscalls, path: str, flags: int) -> None:
    """Bind-remounts with `flags`, keeping the flags the kernel would refuse to clear."""
    current = os.statvfs(path).f_flag & (lx.MS_NOSUID | lx.MS_NODEV | lx.MS_NOEXEC)
    syscalls.mount(None, path, None, lx.MS_REMOUNT | flags | current)


def _mount_cgroups(syscalls: Syscalls, root_fd: int, target: securejoin.Found, m: Mount,
                   cgroup_dirs: dict[str, str], own_cgroupns: bool) -> int:
    """The container's own cgroups at `target`: cgroup2 directly when the container has its own
    cgroup namespace on a unified host; otherwise (v1, hybrid) a tmpfs holding a bind mount of
    the container's directory in each hierarchy, as runc does."""
    if list(cgroup_dirs) == [""]:
        if own_cgroupns:
            return mountfd.mount_new(syscalls, root_fd, target.fd, target.path, "cgroup2",
                                     "cgroup2", m.flags, None)
        top = mountfd.bind(syscalls, cgroup_dirs[""], target.fd, recursive=False)
        mountfd.remount(syscalls, top, lx.MS_BIND | m.flags)
        return top
    top = mountfd.mount_new(syscalls, root_fd, target.fd, target.path, "tmpfs", "tmpfs",
                            m.flags & ~lx.MS_RDONLY, "mode=755")
    try:
        for name, host_dir in cgroup_dirs.items():
            os.mkdir(name, 0o755, dir_fd=top)
            sub = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC,
                          dir_fd=top)
            try:
                bound = mountfd.bind(syscalls, host_dir, sub, recursive=False)
                try:
                    mountfd.remount(syscalls, bound, lx.MS_BIND | m.flags)
                finally:
                    os.close(bound)
            finally:
                os.close(sub)
            if "," in name:  # co-mounted controllers: "cpu" and "cpuacct" lead to "cpu,cpuacct"
                for alias in name.split(","):
                    os.symlink(name, alias, dir_fd=top)
        if m.flags & lx.MS_RDONLY:
            syscalls.mount(None, mountfd.fd_path(top), None, lx.MS_REMOUNT | m.flags,
                           "mode=755")
    except BaseException:
        os.close(top)
        raise
    return top


def make_cwd(config: Config, cwd: str) -> None:
    """As runc: a working directory missing from the image is created (inside the rootfs,
    whatever its symlinks say)."""
    root_fd = os.open(config.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        found = securejoin.walk(root_fd, cwd, create="dir")
    finally:
        os.close(root_fd)
    os.close(found.fd)
    if not stat.S_ISDIR(found.st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), cwd)


def pivot(syscalls: Syscalls, root: str) -> None:
    """Makes `root` the new "/" and detaches the old one so the host's tree is out of reach."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(root)
        syscalls.pivot_root(".", ".")
        os.fchdir(old_root)
    finally:
        os.close(old_root)
    # The old root sits under the new one; a slave copy keeps the unmount from reaching the host.
    syscalls.mount(None, ".", None, lx.MS_SLAVE | lx.MS_REC)
    syscalls.umount2(".", lx.MNT_DETACH)
    os.chdir("/")


def move_root(syscalls: Syscalls, root: str) -> None:
    """--no-pivot: for roots on ramfs, where pivot_root cannot work; weaker than pivot_root."""
    _detach_full_proc_and_sys(syscalls, root)
    os.chdir(root)
    syscalls.mount(root, "/", None, lx.MS_MOVE)
    syscalls.chroot(".")
    os.chdir("/")


def _detach_full_proc_and_sys(syscalls: Syscalls, root: str) -> None:
    """The host's procfs and sysfs mounts would stay in the namespace under the moved root, and
    while a full one is there the kernel lets a user namespace inside the container mount a new
    procfs or sysfs without the masks. So they go first (covered with an empty tmpfs where they
    cannot be unmounted), as runc does."""
    inside = os.path.realpath(root).rstrip("/") + "/"  # as mountinfo shows it
    with open("/proc/self/mountinfo") as f:
        points = [fields[4] for fields in (line.split() for line in f)
                  if fields[3] == "/" and fields[fields.index("-") + 1] in ("proc", "sysfs")
                  and not (fields[4] + "/").startswith(inside)]
    for point in points:
        try:
            # A slave first, so that the unmount does not travel back to the host.
            syscalls.mount(None, point, None, lx.MS_SLAVE | lx.MS_REC)
        except FileNotFoundError:
            continue  # under one detached already
        try:
            syscalls.umount2(point, lx.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            syscalls.mount("tmpfs", point, "tmpfs", 0)


def finalize(syscalls: Syscalls, config: Config, root: str) -> None:
    """After pivot_root (`root` is "/" then): sysctls, read-only and masked paths, a read-only
    root. Whatever is in /proc is reached through a checked procfs descriptor (runtime.init.procfs)."""
    if config.sysctl or config.readonly_paths or config.masked_paths:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        proc_fd = procfs.open_in_root(syscalls, root_fd)
        try:
            if config.sysctl:
                _write_sysctls(syscalls, config.sysctl, proc_fd)
            _Covers(syscalls, root_fd, proc_fd).apply(config)
        finally:
            os.close(root_fd)
            if proc_fd is not None:
                os.close(proc_fd)
    if config.root_readonly:
        _remount(syscalls, root, lx.MS_BIND | lx.MS_RDONLY | lx.MS_REC)


def _write_sysctls(syscalls: Syscalls, sysctl: dict[str, str], proc_fd: int | None) -> None:
    if proc_fd is None:
        raise ConfigError("linux.sysctl", "needs a procfs mounted on the container's /proc")
    for key, value in sysctl.items():
        try:
            procfs.write_sysctl(syscalls, proc_fd, key, value)
        except OSError as e:
            raise ConfigError("linux.sysctl", f"{key}: {_why(e)}") from None


def _why(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "reached through a symlink in /proc; refusing"
    if e.errno == errno.EXDEV:
        return "another mount covers it in /proc; refusing"
    return e.strerror or str(e)


class _Covers:
    """linux.readonlyPaths and linux.maskedPaths, each covered through a descriptor of what the
    path leads to. Below /proc, only procfs reached through no symlink, on the container's procfs
    mount or on one of the covers made here."""

    def __init__(self, syscalls: Syscalls, root_fd: int, proc_fd: int | None) -> None:
        self.syscalls = syscalls
        self.root_fd = root_fd
        self.proc_fd = proc_fd
        self.allowed = {syscalls.mount_id(proc_fd)} if proc_fd is not None else set()
        self.dev_null: int | None = None
        self.empty_dir: int | None = None

    def apply(self, config: Config) -> None:
        try:
            self._each("linux.readonlyPaths", config.readonly_paths, self._read_only)
            self._each("linux.maskedPaths", config.masked_paths, self._mask)
        finally:
            for fd in (self.dev_null, self.empty_dir):
                if fd is not None:
                    os.close(fd)

    def _each(self, field: str, paths: list[str], cover) -> None:
        seen = set()
        for i, path in enumerate(paths):
            clean = os.path.normpath("/" + path.lstrip("/"))  # normpath keeps a leading "//"
            if clean in seen:
                continue
            seen.add(clean)
            try:
                fd = self._open(clean)
                if fd is None:
                    continue  # nothing there: nothing to cover
                try:
                    self.allowed.add(cover(fd, clean))
                finally:
                    os.close(fd)
            except OSError as e:
                raise ConfigError(f"{field}[{i}]", f"{path}: {_why(e)}") from None

    def _open(self, clean: str) -> int | None:
        try:
            if self.proc_fd is not None and clean.startswith("/proc/"):
                fd = procfs.open_beneath(self.syscalls, self.proc_fd, clean[len("/proc/"):])
                if self.syscalls.mount_id(fd) not in self.allowed:
                    os.close(fd)
                    raise OSError(errno.EXDEV, "another mount covers it in /proc")
                return fd
            return securejoin.walk(self.root_fd, clean).fd
        except FileNotFoundError:
            return None

    def _read_only(self, fd: int, clean: str) -> int:
        top = mountfd.read_only_bind(self.syscalls, fd)
        try:
            return self.syscalls.mount_id(top)
        finally:
            os.close(top)

    def _mask(self, fd: int, clean: str) -> int:
        """A directory gets an empty read-only tmpfs, anything else the container's /dev/null
        (CVE-2025-31133: only once it is checked to be the real null device)."""
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            if self.empty_dir is None:
                # The first masked directory gets the tmpfs itself, the others copies of it: a
                # tmpfs left detached would be unmounted at close, and that waits for RCU.
                self.empty_dir = mountfd.empty_read_only_tmpfs(self.syscalls)
                self.syscalls.move_mount(self.empty_dir, fd)
                return self.syscalls.mount_id(self.empty_dir)
            top = mountfd.bind(self.syscalls, self.empty_dir, fd, recursive=False)
        else:
            top = mountfd.bind(self.syscalls, self._null(), fd, recursive=False)
        try:
            return self.syscalls.mount_id(top)
        finally:
            os.close(top)

    def _null(self) -> int:
        if self.dev_null is None:
            found = securejoin.walk(self.root_fd, "/dev/null")
            if not stat.S_ISCHR(found.st.st_mode) or found.st.st_rdev != os.makedev(1, 3):
                os.close(found.fd)
                raise OSError(0, "/dev/null in the container is not the null device (char 1:3); "
                                 "refusing to bind it")
            self.dev_null = found.fd
        return self.dev_null
