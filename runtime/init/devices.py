"""/dev inside the container: the default device nodes, linux.devices, and the usual symlinks.

Only when /dev is the container's own (a tmpfs), not a bind mount of the host's /dev.
"""
from __future__ import annotations

import os
import stat

from linux.syscalls import Syscalls
from runtime.init import mountfd, securejoin
from runtime.config import Config, Device

# The nodes every container gets (OCI runtime spec, "Default Devices").
DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)

# Device cgroup rules every container gets after its config's own, as runc adds them: mknod of
# anything, the default nodes, every pty (136:*), /dev/ptmx (5:2) and /dev/net/tun (10:200).
DEFAULT_CGROUP_RULES = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": d.major, "minor": d.minor, "access": "rwm"}
      for d in DEFAULT_DEVICES),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
)

_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def owns_dev(config: Config) -> bool:
    """True when the container's /dev is not a bind mount of some existing /dev."""
    return not any(m.destination == "/dev" and m.is_bind for m in config.mounts)


def populate(syscalls: Syscalls, config: Config, in_user_namespace: bool) -> None:
    """Creates the nodes and symlinks, each through a descriptor of its directory resolved inside
    the rootfs, so no symlink in the image can place one outside it."""
    root_fd = os.open(config.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    dirs = _Dirs(root_fd)
    try:
        devices = {d.path: d for d in DEFAULT_DEVICES}
        devices.update((d.path, d) for d in config.devices)
        for device in devices.values():
            _create(syscalls, *dirs.parent_of(device.path), device, in_user_namespace)
        links = list(_SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        for target, link in links:
            dir_fd, name = dirs.parent_of(link)
            try:
                os.symlink(target, name, dir_fd=dir_fd)
            except FileExistsError:
                pass
        # devpts mounted with newinstance has its own ptmx; /dev/ptmx must lead to it.
        if any(m.destination == "/dev/pts" for m in config.mounts):
            dev_fd, name = dirs.parent_of("/dev/ptmx")
            try:
                os.unlink(name, dir_fd=dev_fd)
            except FileNotFoundError:
                pass
            os.symlink("pts/ptmx", name, dir_fd=dev_fd)
    finally:
        dirs.close()
        os.close(root_fd)


class _Dirs:
    """The directories the nodes go in, each resolved (and made) inside the rootfs once."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.fds: dict[str, int] = {}

    def parent_of(self, path: str) -> tuple[int, str]:
        parent, name = os.path.split(os.path.normpath(path))
        if parent not in self.fds:
            self.fds[parent] = securejoin.walk(self.root_fd, parent, create="dir").fd
        return self.fds[parent], name

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def _create(syscalls: Syscalls, dir_fd: int, name: str, device: Device,
            in_user_namespace: bool) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    kind = _TYPES[device.type]
    if in_user_namespace:
        # mknod is refused in a user namespace: borrow the host's node with a bind mount.
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                         0o644, dir_fd=dir_fd))
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.close(mountfd.bind(syscalls, device.path, fd, recursive=False))
        finally:
            os.close(fd)
        return
    os.mknod(name, kind | device.file_mode, os.makedev(device.major, device.minor), dir_fd=dir_fd)
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        wrong_rdev = kind != stat.S_IFIFO and st.st_rdev != os.makedev(device.major, device.minor)
        if stat.S_IFMT(st.st_mode) != kind or wrong_rdev:
            raise OSError(0, f"{device.path}: not the node just made (replaced meanwhile)")
        # mknod's mode is filtered by the umask; the spec's fileMode is exact.
        os.chmod(mountfd.fd_path(fd), device.file_mode)
        os.chown(mountfd.fd_path(fd), device.uid, device.gid)
    finally:
        os.close(fd)
