"""The container's mount namespace: root propagation, the config's mounts, pivot_root, and the
read-only and masked paths. Runs in the container's init, in its new mount namespace.
"""
from __future__ import annotations

import os
import stat

from overlay import mount as mnt
from runtime import securejoin, syscalls
from runtime.config import Config, Mount
from runtime.errors import ConfigError

# Mount flags that a remount must keep when the mount was inherited from a more privileged
# mount namespace (the kernel locks them); statvfs reports them with the same bit values.
_LOCKED_FLAGS = mnt.MS_RDONLY | mnt.MS_NOSUID | mnt.MS_NODEV | mnt.MS_NOEXEC | mnt.MS_NOATIME | \
    mnt.MS_NODIRATIME | mnt.MS_RELATIME
_PROPAGATION = {"shared": mnt.MS_SHARED, "slave": mnt.MS_SLAVE, "private": mnt.MS_PRIVATE,
                "unbindable": mnt.MS_UNBINDABLE}


def propagation_flags(name: str) -> int:
    """rootfsPropagation name -> mount flags; runc's default is a recursive slave."""
    if not name:
        return mnt.MS_SLAVE | mnt.MS_REC
    if name.startswith("r"):
        return _PROPAGATION[name[1:]] | mnt.MS_REC
    return _PROPAGATION[name]


def prepare(config: Config) -> None:
    """Cuts the new mount namespace off from the host's events and makes the rootfs a mount point
    (pivot_root needs one)."""
    flags = propagation_flags(config.rootfs_propagation)
    mnt.mount(None, "/", None, flags)
    if flags & mnt.MS_SHARED:
        # pivot_root refuses a new root whose parent mount is shared.
        mnt.mount(None, _mount_point_of(os.path.dirname(config.root_path)), None, mnt.MS_PRIVATE)
    mnt.mount(config.root_path, config.root_path, None, mnt.MS_BIND | mnt.MS_REC)


def _mount_point_of(path: str) -> str:
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split(" ", 5)[4]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    return best


def mount_all(config: Config, cgroup_dirs: dict[str, str]) -> None:
    for m in config.mounts:
        try:
            _mount_one(config, m, cgroup_dirs)
        except OSError as e:
            raise ConfigError(m.field, f"{m.destination}: {e.strerror or e}") from None


def _mount_one(config: Config, m: Mount, cgroup_dirs: dict[str, str]) -> None:
    dest = securejoin.join(config.root_path, m.destination)
    if m.is_bind:
        source_is_dir = os.path.isdir(m.source)
        _make_mount_point(dest, directory=source_is_dir)
        mnt.mount(m.source, dest, None, m.flags & (mnt.MS_BIND | mnt.MS_REC))
        extra = m.flags & ~(mnt.MS_BIND | mnt.MS_REC | mnt.MS_REMOUNT)
        if extra:
            _remount(dest, mnt.MS_BIND | extra | (m.flags & mnt.MS_REC))
    elif m.type == "cgroup":
        _make_mount_point(dest, directory=True)
        _mount_cgroups(dest, m, cgroup_dirs, config.new_namespace("cgroup"))
    elif "tmpcopyup" in m.options and os.path.isdir(dest):
        _mount_tmpfs_copy_up(dest, m)
    else:
        _make_mount_point(dest, directory=True)
        mnt.mount(m.source or m.type, dest, m.type, m.flags, m.data)
    for flag in m.propagation:
        mnt.mount(None, dest, None, flag)


def _mount_tmpfs_copy_up(dest: str, m: Mount) -> None:
    """A tmpfs at `dest` holding a copy of what the image has there. The image's directory is
    read through a descriptor opened before the tmpfs covers it."""
    image_dir = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mnt.mount(m.source or "tmpfs", dest, "tmpfs", m.flags & ~mnt.MS_RDONLY, m.data)
        top = os.fstat(image_dir)
        os.chmod(dest, stat.S_IMODE(top.st_mode))
        os.chown(dest, top.st_uid, top.st_gid)
        for here, dirs, files, here_fd in os.fwalk(".", dir_fd=image_dir):
            for name in dirs + files:
                _copy_entry(name, here_fd, os.path.join(dest, here, name))
    finally:
        os.close(image_dir)
    if m.flags & mnt.MS_RDONLY:
        mnt.mount(None, dest, None, mnt.MS_REMOUNT | m.flags, m.data)


def _copy_entry(name: str, dir_fd: int, target: str) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=dir_fd), target)
    elif stat.S_ISDIR(mode):
        os.mkdir(target)
    elif stat.S_ISREG(mode):
        src = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                while chunk := os.read(src, 1 << 16):
                    os.write(dst, chunk)
            finally:
                os.close(dst)
        finally:
            os.close(src)
    else:  # device nodes, fifos, sockets
        os.mknod(target, mode, st.st_rdev)
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(target, stat.S_IMODE(mode))


def _make_mount_point(path: str, directory: bool) -> None:
    if os.path.lexists(path):
        return
    if directory:
        os.makedirs(path, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _remount(path: str, flags: int) -> None:
    """Bind-remounts with `flags`, keeping the flags the kernel would refuse to clear."""
    current = os.statvfs(path).f_flag & (mnt.MS_NOSUID | mnt.MS_NODEV | mnt.MS_NOEXEC)
    mnt.mount(None, path, None, mnt.MS_REMOUNT | flags | current)


def _mount_cgroups(dest: str, m: Mount, cgroup_dirs: dict[str, str], own_cgroupns: bool) -> None:
    """The container's own cgroups at `dest`: cgroup2 directly when the container has its own
    cgroup namespace on a unified host; otherwise (v1, hybrid) a tmpfs holding a bind mount of
    the container's directory in each hierarchy, as runc does."""
    read_only = m.flags & mnt.MS_RDONLY
    flags = m.flags & ~mnt.MS_RDONLY
    if list(cgroup_dirs) == [""]:
        if own_cgroupns:
            mnt.mount("cgroup2", dest, "cgroup2", m.flags)
        else:
            mnt.mount(cgroup_dirs[""], dest, None, mnt.MS_BIND)
            _remount(dest, mnt.MS_BIND | m.flags)
        return
    mnt.mount("tmpfs", dest, "tmpfs", flags, "mode=755")
    for name, host_dir in cgroup_dirs.items():
        sub = os.path.join(dest, name)
        os.mkdir(sub, 0o755)
        mnt.mount(host_dir, sub, None, mnt.MS_BIND)
        _remount(sub, mnt.MS_BIND | m.flags)
        if "," in name:  # co-mounted controllers: "cpu" and "cpuacct" lead to "cpu,cpuacct"
            for alias in name.split(","):
                os.symlink(name, os.path.join(dest, alias))
    if read_only:
        mnt.mount(None, dest, None, mnt.MS_REMOUNT | m.flags, "mode=755")


def make_cwd(config: Config, cwd: str) -> None:
    """As runc: a working directory missing from the image is created."""
    path = securejoin.join(config.root_path, cwd)
    if not os.path.isdir(path):
        os.makedirs(path, 0o755, exist_ok=True)


def pivot(root: str) -> None:
    """Makes `root` the new "/" and detaches the old one so the host's tree is out of reach."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(root)
        syscalls.pivot_root(".", ".")
        os.fchdir(old_root)
    finally:
        os.close(old_root)
    # The old root sits under the new one; a slave copy keeps the unmount from reaching the host.
    mnt.mount(None, ".", None, mnt.MS_SLAVE | mnt.MS_REC)
    mnt.umount2(".", mnt.MNT_DETACH)
    os.chdir("/")


def move_root(root: str) -> None:
    """--no-pivot: for roots on ramfs, where pivot_root cannot work; weaker than pivot_root."""
    os.chdir(root)
    mnt.mount(root, "/", None, mnt.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def finalize(config: Config) -> None:
    """After pivot_root: sysctls, read-only and masked paths, a read-only root."""
    for key, value in config.sysctl.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    for path in config.readonly_paths:
        _read_only(path)
    for path in config.masked_paths:
        _mask(path)
    if config.root_readonly:
        _remount("/", mnt.MS_BIND | mnt.MS_RDONLY | mnt.MS_REC)


def _read_only(path: str) -> None:
    try:
        mnt.mount(path, path, None, mnt.MS_BIND | mnt.MS_REC)
    except FileNotFoundError:
        return
    _remount(path, mnt.MS_BIND | mnt.MS_RDONLY | mnt.MS_REC)


def _mask(path: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        mnt.mount("tmpfs", path, "tmpfs", mnt.MS_RDONLY)
    else:
        mnt.mount("/dev/null", path, None, mnt.MS_BIND)
