"""`RecordingSyscalls`: a stand-in for linux.syscalls.Syscalls that records each call instead of
making it, for unit tests of the code that decides what to mount where (no root needed).

What changes the kernel's state (mount, move_mount, pivot_root, unshare, clone, prctl...) is only
recorded. The code under test works on a real directory tree standing in for the rootfs, so
what only looks things up (openat2, fstatfs) goes to the real kernel: paths resolve as the
tree says. Descriptors the fake hands out are real ones, of what the call names, so the caller
may fstat and close them as usual. Mount ids follow a small model of what the recorded mounts
would have done: a new mount gets an id from a counter and covers the file it went onto; a
descriptor keeps the mount it was opened on.

Each call is recorded as a tuple (name, *arguments). A descriptor argument is written as the
label of what it is: "tree:<path>" for a detached mount made by open_tree, "fsmount:<fs>" and
"fscontext:<fs>" for the new mount API's objects, "fd:<path>" for anything else (a mount target
given as /proc/self/fd/N too), AT_FDCWD as "AT_FDCWD".
"""
from __future__ import annotations

import itertools
import os
from typing import Callable

from linux import constants as lx
from linux.syscalls import Syscalls

Call = tuple
# Calls that change nothing in the kernel; `actions` leaves them out.
QUERIES = frozenset(("openat2", "fstatfs_type", "mount_id"))
_FIRST_FAKE_MOUNT_ID = 1 << 32  # above any id the real kernel hands out here (STATX_MNT_ID)
_FD_PREFIX = "/proc/self/fd/"


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


class RecordingSyscalls(Syscalls):
    __slots__ = ("calls", "_failures", "_mount_ids", "_pids", "_top", "_pinned", "_labels")

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._failures: list[tuple[str, int, Callable[[Call], bool] | None]] = []
        self._mount_ids = itertools.count(_FIRST_FAKE_MOUNT_ID)
        self._pids = itertools.count(4000)
        # (st_dev, st_ino) -> the id of the mount the fake made on top of that file
        self._top: dict[tuple[int, int], int] = {}
        # descriptor -> (identity, mount id) for descriptors whose mount is known, valid while
        # the number still refers to that file
        self._pinned: dict[int, tuple[tuple[int, int], int]] = {}
        # descriptor -> (identity, label) for descriptors the fake handed out
        self._labels: dict[int, tuple[tuple[int, int], str]] = {}

    # --- for the tests ------------------------------------------------------------------------

    def fail(self, name: str, err: int, when: Callable[[Call], bool] | None = None) -> None:
        """From now on, calls to `name` (those for which `when(call)` is true, if given) are
        recorded, then raise OSError(err) as the kernel would."""
        self._failures.append((name, err, when))

    @property
    def actions(self) -> list[Call]:
        """The calls that would have changed something: every call but the look-ups."""
        return [call for call in self.calls if call[0] not in QUERIES]

    def names(self) -> list[str]:
        return [call[0] for call in self.actions]

    # --- mounts -------------------------------------------------------------------------------

    def mount(self, source: str | None, target: str, fstype: str | None = None, flags: int = 0,
              data: str | None = None) -> None:
        self._record("mount", source, self._path_label(target), fstype, flags, data)
        if flags & lx.MS_REMOUNT or (not flags & lx.MS_BIND
                                     and flags & (lx.MS_PROPAGATION | lx.MS_MOVE)):
            return  # as the kernel decides: a change of an existing mount, nothing new
        if target.startswith(_FD_PREFIX):
            fd = int(target[len(_FD_PREFIX):])
            self._cover(fd, next(self._mount_ids))
        else:
            fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
            try:
                self._cover(fd, next(self._mount_ids))
            finally:
                os.close(fd)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", self._path_label(target), flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def chroot(self, path: str) -> None:
        self._record("chroot", path)

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        self._record("open_tree", self._label(dirfd), path, flags)
        if flags & lx.AT_EMPTY_PATH and not path:
            fd = os.dup(dirfd)
            source = self._label(dirfd).removeprefix("fd:")
        else:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC,
                         dir_fd=None if dirfd == lx.AT_FDCWD else dirfd)
            source = os.readlink(_FD_PREFIX + str(fd))
        if flags & lx.OPEN_TREE_CLONE:
            mount_id = next(self._mount_ids)
            label = "tree:" + source
        else:
            mount_id = self._mount_of(fd)
            label = None
        return self._hand_out(fd, mount_id, label)

    def move_mount(self, from_fd: int, to_fd: int) -> None:
        self._record("move_mount", self._label(from_fd), self._label(to_fd))
        self._cover(to_fd, self._mount_of(from_fd))

    def fsopen(self, fs_name: str) -> int:
        self._record("fsopen", fs_name)
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return self._hand_out(fd, None, f"fscontext:{fs_name}")

    def fsconfig(self, fd: int, cmd: int, key: str | None = None,
                 value: str | None = None) -> None:
        self._record("fsconfig", self._label(fd), cmd, key, value)

    def fsmount(self, fd: int, attr_flags: int) -> int:
        self._record("fsmount", self._label(fd), attr_flags)
        fs_name = self._label(fd).partition(":")[2]
        # A directory to stand for the new filesystem's root; nothing is ever read through it.
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._hand_out(root, next(self._mount_ids), f"fsmount:{fs_name}")

    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int = 0,
                      recursive: bool = False) -> None:
        self._record("mount_setattr", self._label(fd), attr_set, attr_clr, recursive)

    # --- looking things up: the real kernel, on the test's tree -----------------------------

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        self._record("openat2", self._label(dirfd), path, flags, resolve, mode)
        fd = super().openat2(dirfd, path, flags, resolve, mode)
        self._forget(fd)
        return fd

    def fstatfs_type(self, fd: int) -> int:
        self._record("fstatfs_type", self._label(fd))
        return super().fstatfs_type(fd)

    def mount_id(self, fd: int) -> int:
        self._record("mount_id", self._label(fd))
        return self._mount_of(fd)

    # --- processes and namespaces -------------------------------------------------------------

    def clone(self, flags: int) -> int:
        self._record("clone", flags)
        return next(self._pids)

    def clone_into(self, flags: int, cgroup_fd: int) -> int:
        self._record("clone_into", flags, self._label(cgroup_fd))
        return next(self._pids)

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        self._record("setns", self._label(fd), nstype)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)

    def join_session_keyring(self, name: str) -> None:
        self._record("join_session_keyring", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        self._record("prctl", option, arg2, arg3)

    def set_name(self, name: str) -> None:
        self._record("set_name", name[:15])

    def set_caps(self, effective: set[int], permitted: set[int], inheritable: set[int],
                 last_cap: int) -> None:
        self._record("set_caps", sorted(effective), sorted(permitted), sorted(inheritable))

    def ambient_clear_all(self) -> None:
        self._record("ambient_clear_all")

    def ambient_raise(self, cap: int) -> None:
        self._record("ambient_raise", cap)

    def seccomp_set_filter(self, program: bytes, flags: int) -> None:
        self._record("seccomp_set_filter", len(program) // 8, flags)

    def send_fd(self, sock: int, fd: int, name: str) -> None:
        self._record("send_fd", self._label(sock), self._label(fd), name)

    # --- the model ----------------------------------------------------------------------------

    def _record(self, name: str, *args: object) -> None:
        call = (name, *args)
        self.calls.append(call)
        for failing, err, when in self._failures:
            if failing == name and (when is None or when(call)):
                raise OSError(err, f"{name}: {os.strerror(err)} (injected)")

    def _hand_out(self, fd: int, mount_id: int | None, label: str | None) -> int:
        self._forget(fd)
        identity = _identity(fd)
        if mount_id is not None:
            self._pinned[fd] = (identity, mount_id)
        if label is not None:
            self._labels[fd] = (identity, label)
        return fd

    def _forget(self, fd: int) -> None:
        """`fd` is a new descriptor: whatever was known of an earlier one by that number is
        stale."""
        self._pinned.pop(fd, None)
        self._labels.pop(fd, None)

    def _mount_of(self, fd: int) -> int:
        identity = _identity(fd)
        pinned = self._pinned.get(fd)
        if pinned is not None and pinned[0] == identity:
            return pinned[1]
        return self._top.get(identity) or super().mount_id(fd)

    def _cover(self, fd: int, mount_id: int) -> None:
        """A new mount `mount_id` on top of the file behind `fd`, which stays on the mount it
        was on (as a descriptor does in the kernel)."""
        identity = _identity(fd)
        self._pinned[fd] = (identity, self._mount_of(fd))
        self._top[identity] = mount_id

    def _label(self, fd: int) -> str:
        if fd == lx.AT_FDCWD:
            return "AT_FDCWD"
        known = self._labels.get(fd)
        try:
            if known is not None and known[0] == _identity(fd):
                return known[1]
            return "fd:" + os.readlink(_FD_PREFIX + str(fd))
        except OSError:
            return f"fd:{fd} (not open)"

    def _path_label(self, path: str) -> str:
        if path.startswith(_FD_PREFIX):
            return self._label(int(path[len(_FD_PREFIX):]))
        return path
