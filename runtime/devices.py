"""/dev inside the container: the default device nodes, linux.devices, and the usual symlinks.

Only when /dev is the container's own (a tmpfs), not a bind mount of the host's /dev.
"""
from __future__ import annotations

import os
import stat

from overlay import mount as m
from runtime import securejoin
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


def populate(config: Config, in_user_namespace: bool) -> None:
    root = config.root_path
    devices = {d.path: d for d in DEFAULT_DEVICES}
    devices.update((d.path, d) for d in config.devices)
    for device in devices.values():
        _create(root, device, in_user_namespace)
    for target, link in _SYMLINKS:
        _symlink(target, securejoin.join(root, link))
    if os.path.exists("/proc/kcore"):
        _symlink("/proc/kcore", securejoin.join(root, "/dev/core"))
    # devpts mounted with newinstance has its own ptmx; /dev/ptmx must lead to it.
    if any(m.destination == "/dev/pts" for m in config.mounts):
        ptmx = securejoin.join(root, "/dev/ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)


def _create(root: str, device: Device, in_user_namespace: bool) -> None:
    path = securejoin.join(root, device.path)
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    if in_user_namespace:
        # mknod is refused in a user namespace: borrow the host's node with a bind mount.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        m.mount(device.path, path, None, m.MS_BIND)
        return
    os.mknod(path, _TYPES[device.type] | device.file_mode, os.makedev(device.major, device.minor))
    # mknod's mode is filtered by the umask; the spec's fileMode is exact.
    os.chmod(path, device.file_mode)
    os.chown(path, device.uid, device.gid)


def _symlink(target: str, link: str) -> None:
    try:
        os.symlink(target, link)
    except FileExistsError:
        pass
