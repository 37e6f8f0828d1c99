"""`Syscalls`: the kernel calls the standard library lacks (mount, the new mount API, openat2,
clone/clone3, unshare, setns, pivot_root, prctl, keyrings...), as methods of one object.

The object is created once where a command starts and passed down, so that the code deciding
what to mount where can be run against linux.fake.RecordingSyscalls instead, without root.

Every failure raises OSError with the errno and the call's arguments, so an error that crosses the
init/runtime boundary keeps its cause.
"""
from __future__ import annotations

import os

import _prctl  # python-prctl's C module, for capset(2) alone: the cffi module has no capset

from linux import constants as lx
from linux._native import ffi, lib


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ffi.errno
        if path is None:
            raise OSError(err, f"{what}: {os.strerror(err)}")
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _encoded(text: str | None):
    return text.encode() if text is not None else ffi.NULL


class Syscalls:
    """The real kernel. Stateless: one instance per process is plenty."""

    __slots__ = ()

    # --- mounts -------------------------------------------------------------------------------

    def mount(self, source: str | None, target: str, fstype: str | None = None, flags: int = 0,
              data: str | None = None) -> None:
        if lib.mount(_encoded(source), target.encode(), _encoded(fstype), flags,
                     data.encode() if data else ffi.NULL) < 0:
            err = ffi.errno
            raise OSError(err, f"mount {source or 'none'} on {target} (type {fstype or 'none'}, "
                               f"flags {flags:#x}{', ' + data if data else ''}): "
                               f"{os.strerror(err)}")

    def umount2(self, target: str, flags: int = 0) -> None:
        _check(lib.umount2(target.encode(), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        _check(lib.pyc_pivot_root(new_root.encode(), put_old.encode()), f"pivot_root {new_root}")

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        """open_tree(2), close-on-exec; with OPEN_TREE_CLONE, a detached copy of the mount."""
        return _check(lib.pyc_open_tree(dirfd, path.encode(), flags | os.O_CLOEXEC),
                      "open_tree", path)

    def move_mount(self, from_fd: int, to_fd: int) -> None:
        """Attaches the mount `from_fd` on top of what `to_fd` refers to, without any path
        lookup."""
        _check(lib.pyc_move_mount(from_fd, b"", to_fd, b"",
                                  lx.MOVE_MOUNT_F_EMPTY_PATH | lx.MOVE_MOUNT_T_EMPTY_PATH),
               "move_mount")

    def fsopen(self, fs_name: str) -> int:
        return _check(lib.pyc_fsopen(fs_name.encode(), lx.FSOPEN_CLOEXEC), f"fsopen {fs_name}")

    def fsconfig(self, fd: int, cmd: int, key: str | None = None,
                 value: str | None = None) -> None:
        _check(lib.pyc_fsconfig(fd, cmd, _encoded(key), _encoded(value), 0),
               f"fsconfig {key or 'create'}")

    def fsmount(self, fd: int, attr_flags: int) -> int:
        return _check(lib.pyc_fsmount(fd, lx.FSMOUNT_CLOEXEC, attr_flags), "fsmount")

    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int = 0,
                      recursive: bool = False) -> None:
        """mount_setattr(2) on the mount `fd` is the root of."""
        flags = lx.AT_EMPTY_PATH | (lx.AT_RECURSIVE if recursive else 0)
        _check(lib.pyc_mount_setattr(fd, b"", flags, attr_set, attr_clr, 0), "mount_setattr")

    # --- looking things up ----------------------------------------------------------------------

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        """A descriptor for `path` under `dirfd`, resolved under the RESOLVE_* rules; always
        close-on-exec."""
        return _check(lib.pyc_openat2(dirfd, path.encode(), flags | os.O_CLOEXEC, mode, resolve),
                      "openat2", path)

    def fstatfs_type(self, fd: int) -> int:
        """The filesystem's magic number (statfs f_type)."""
        return _check(lib.pyc_fstatfs_type(fd), "fstatfs")

    def mount_id(self, fd: int) -> int:
        """The id of the mount the file behind `fd` is reached through (statx STATX_MNT_ID)."""
        out = ffi.new("uint64_t *")
        _check(lib.pyc_mount_id(fd, out), "statx")
        return out[0]

    # --- processes and namespaces -------------------------------------------------------------

    def clone(self, flags: int) -> int:
        """fork() with namespace flags; returns 0 in the child and the child's PID in the
        parent."""
        return _check(lib.pyc_clone(flags), "clone")

    def clone_into(self, flags: int, cgroup_fd: int) -> int:
        """clone() whose child starts in the cgroup v2 directory `cgroup_fd` (clone3 with
        CLONE_INTO_CGROUP)."""
        return _check(lib.pyc_clone_into(flags, cgroup_fd), "clone3 into cgroup")

    def unshare(self, flags: int) -> None:
        _check(lib.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int = 0) -> None:
        _check(lib.setns(fd, nstype), "setns")

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(lib.sethostname(raw, len(raw)), "sethostname")

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        _check(lib.setdomainname(raw, len(raw)), "setdomainname")

    def join_session_keyring(self, name: str) -> None:
        _check(lib.pyc_join_session_keyring(name.encode()), "join session keyring")

    # --- process attributes (prctl) and capabilities ------------------------------------------

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        """prctl(2) with integer arguments (PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS,
        PR_CAPBSET_DROP, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG...)."""
        # The message only on failure: a shim's one call after its fork would otherwise build
        # a string (and write the pages that takes) for nothing.
        if lib.pyc_prctl(option, arg2, arg3) < 0:
            _check(-1, f"prctl {option}")

    def set_name(self, name: str) -> None:
        """PR_SET_NAME: the thread's name as ps and /proc/PID/comm show it (15 bytes kept)."""
        raw = ffi.new("char[]", name.encode()[:15])
        _check(lib.pyc_prctl(lx.PR_SET_NAME, int(ffi.cast("uintptr_t", raw)), 0),
               f"prctl PR_SET_NAME {name}")

    def set_caps(self, effective: set[int], permitted: set[int], inheritable: set[int],
                 last_cap: int) -> None:
        """capset(2): exactly these three sets, every other capability up to `last_cap`
        cleared from each."""
        every = range(last_cap + 1)
        _prctl.set_caps(sorted(effective), sorted(permitted), sorted(inheritable),
                        [c for c in every if c not in effective],
                        [c for c in every if c not in permitted],
                        [c for c in every if c not in inheritable])

    def ambient_clear_all(self) -> None:
        _check(lib.pyc_prctl(lx.PR_CAP_AMBIENT, lx.PR_CAP_AMBIENT_CLEAR_ALL, 0),
               "clear ambient capabilities")

    def ambient_raise(self, cap: int) -> None:
        _check(lib.pyc_prctl(lx.PR_CAP_AMBIENT, lx.PR_CAP_AMBIENT_RAISE, cap),
               f"raise ambient capability {cap}")

    def seccomp_set_filter(self, program: bytes, flags: int) -> None:
        """seccomp(SECCOMP_SET_MODE_FILTER) with a compiled program (runtime.seccomp.Program)."""
        _check(lib.pyc_seccomp_set_filter(program, len(program) // 8, flags), "seccomp")

    def send_fd(self, sock: int, fd: int, name: str) -> None:
        """Sends `fd` with SCM_RIGHTS and `name` as the payload (runc's console-socket
        protocol)."""
        _check(lib.pyc_send_fd(sock, fd, name.encode()), "send fd over console socket")
