"""Named network namespaces, kept alive by a bind mount of their nsfs file, like `ip netns add`:
<dir>/<name>, where <dir> is /run/netns unless the caller (a test, the kubelet) picks its own."""
from __future__ import annotations

import ctypes
import errno
import os
import _thread

DEFAULT_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), b"none", flags, None),
           f"mount {target}")


def check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"invalid netns name {name!r}")


def path_of(name: str, netns_dir: str = DEFAULT_DIR) -> str:
    check_name(name)
    return os.path.join(netns_dir, name)


def _make_dir_shared(netns_dir: str) -> None:
    # As iproute2 does: a shared mount point, so that a later umount reaches the copies that
    # mount namespaces cloned in between hold, and the namespace really goes away.
    os.makedirs(netns_dir, mode=0o755, exist_ok=True)
    try:
        _mount("", netns_dir, MS_SHARED | MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        _mount(netns_dir, netns_dir, MS_BIND | MS_REC)
        _mount("", netns_dir, MS_SHARED | MS_REC)


def create(name: str, netns_dir: str = DEFAULT_DIR) -> str:
    """Creates a new, empty network namespace named `name` and returns its path.
    FileExistsError if the name is taken; on any failure nothing is left behind."""
    path = path_of(name, netns_dir)
    _make_dir_shared(netns_dir)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    failure: list[BaseException] = []
    done = _thread.allocate_lock()
    done.acquire()

    def worker() -> None:
        # unshare() gives only this thread the new namespace; the thread ends right after.
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _mount(f"/proc/self/task/{_thread.get_native_id()}/ns/net", path, MS_BIND)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.release()

    # A bare thread waited for once: Thread.start() would first wait for the thread to run,
    # one more turn of the interpreter lock among a burst's pod workers.
    _thread.start_new_thread(worker, ())
    done.acquire()
    if failure:
        os.unlink(path)
        raise failure[0]
    return path


def delete(name: str, netns_dir: str = DEFAULT_DIR) -> bool:
    """Unmounts and removes the namespace file; False if it did not exist. The namespace itself
    ends when no process or link holds it any more."""
    path = path_of(name, netns_dir)
    rc = _libc.umount2(path.encode(), MNT_DETACH)
    if rc != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        _check(rc, f"umount {path}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def exists(name: str, netns_dir: str = DEFAULT_DIR) -> bool:
    return os.path.exists(path_of(name, netns_dir))


def list_names(netns_dir: str = DEFAULT_DIR) -> list[str]:
    try:
        return sorted(os.listdir(netns_dir))
    except FileNotFoundError:
        return []


def release_dir(netns_dir: str) -> None:
    """Undoes the shared mount that create() put on `netns_dir` and removes it if empty (for a
    test or a kubelet that owns its own directory)."""
    while _libc.umount2(netns_dir.encode(), MNT_DETACH) == 0:
        pass
    try:
        os.rmdir(netns_dir)
    except OSError:
        pass
