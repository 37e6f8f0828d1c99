"""A rootfs and its config for the root-free unit tests that run the runtime's mount logic against
linux.fake.RecordingSyscalls: a plain directory tree stands in for the image, and the calls the
code would have made are read back from the fake."""
from __future__ import annotations

import copy
import os

import pytest

from linux import constants as lx
from linux.fake import RecordingSyscalls
from runtime.config import Config, parse
from runtime.default_spec import default_spec

# A user namespace keeps mknod out of the plan (devices are bound from the host then), so that
# the whole of it runs without root.
_USERNS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
           "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}


class Bundle:
    """<tmp>/rootfs with a config made from runc's default spec, minus the parts a test does not
    ask for."""

    def __init__(self, tmp_path) -> None:
        self.dir = str(tmp_path)
        self.rootfs = os.path.join(self.dir, "rootfs")
        os.mkdir(self.rootfs)
        self.raw = copy.deepcopy(default_spec(unified_cgroups=False))
        self.raw["mounts"] = []
        self.raw["root"]["readonly"] = False
        self.raw["linux"]["maskedPaths"] = []
        self.raw["linux"]["readonlyPaths"] = []
        self.raw["linux"].update(copy.deepcopy(_USERNS))
        self.raw["linux"]["namespaces"].append({"type": "user"})

    def config(self, **linux: object) -> Config:
        self.raw["linux"].update(linux)
        return parse(self.raw, self.dir)

    def without_namespace(self, kind: str) -> None:
        self.raw["linux"]["namespaces"] = [n for n in self.raw["linux"]["namespaces"]
                                           if n["type"] != kind]

    def path(self, inside: str) -> str:
        """The host path of `inside` the rootfs."""
        return os.path.join(self.rootfs, inside.lstrip("/"))

    def fd(self, inside: str) -> str:
        """How the fake writes a descriptor of `inside` the rootfs."""
        return "fd:" + self.path(inside).rstrip("/")

    def make(self, inside: str, kind: str = "dir", target: str = "") -> str:
        path = self.path(inside)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif kind == "file":
            with open(path, "w"):
                pass
        else:
            os.symlink(target, path)
        return path


@pytest.fixture
def bundle(tmp_path) -> Bundle:
    """A plain tree in place of the conftest's busybox bundle (the tests import it)."""
    return Bundle(tmp_path)


@pytest.fixture
def kernel() -> RecordingSyscalls:
    return RecordingSyscalls()


def masking_tmpfs(first_target: str) -> list[tuple]:
    """The calls that make the one empty read-only tmpfs the masked directories share, and
    move it onto the first of them."""
    return [
        ("fsopen", "tmpfs"),
        ("fsconfig", "fscontext:tmpfs", lx.FSCONFIG_SET_STRING, "nr_blocks", "1"),
        ("fsconfig", "fscontext:tmpfs", lx.FSCONFIG_SET_STRING, "nr_inodes", "1"),
        ("fsconfig", "fscontext:tmpfs", lx.FSCONFIG_CMD_CREATE, None, None),
        ("fsmount", "fscontext:tmpfs", lx.MOUNT_ATTR_RDONLY | lx.MOUNT_ATTR_NOSUID |
         lx.MOUNT_ATTR_NODEV | lx.MOUNT_ATTR_NOEXEC),
        ("move_mount", "fsmount:tmpfs", first_target),
    ]


def host_dir(tmp_path, name: str) -> str:
    """A directory outside the rootfs, to bind from."""
    path = os.path.join(str(tmp_path), name)
    os.makedirs(path, exist_ok=True)
    return path


def kept_flags(path: str) -> int:
    """The flags a remount keeps from the mount `path` is on (runtime.init.mountfd.remount)."""
    return os.statvfs(path).f_flag & (lx.MS_NOSUID | lx.MS_NODEV | lx.MS_NOEXEC)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))
