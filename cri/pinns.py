"""Pinned namespaces for a pod sandbox, as CRI-O's pinns does: a new IPC and UTS namespace
(with the pod's hostname set in it), each kept alive by a bind mount of its nsfs file under the
sandbox's directory, with no process holding them. Containers join them by path.

The directory holding the pins is a shared mount (as /run/netns is for `ip netns`), so that
unmounting a pin also reaches the copies that mount namespaces cloned meanwhile hold."""
from __future__ import annotations

import errno
import os
import threading

from linux.constants import CLONE_NEWIPC, CLONE_NEWUTS, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED
from linux.syscalls import Syscalls

_KERNEL = Syscalls()  # stateless; tests pass linux.fake.RecordingSyscalls instead


def make_shared_dir(path: str, syscalls: Syscalls = _KERNEL) -> None:
    os.makedirs(path, mode=0o711, exist_ok=True)
    try:
        syscalls.mount(None, path, None, MS_SHARED | MS_REC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        syscalls.mount(path, path, None, MS_BIND | MS_REC)
        syscalls.mount(None, path, None, MS_SHARED | MS_REC)


def release_shared_dir(path: str, syscalls: Syscalls = _KERNEL) -> None:
    """Undoes make_shared_dir once nothing is pinned below it (tests, a kubelet's removal)."""
    while True:
        try:
            syscalls.umount2(path, MNT_DETACH)
        except OSError:
            return


def pin(directory: str, ipc: bool, uts: bool, hostname: str,
        syscalls: Syscalls = _KERNEL) -> dict[str, str]:
    """New namespaces pinned at <directory>/ipc and <directory>/uts (those asked for); returns
    {"ipc": path, "uts": path}. On failure nothing is left pinned."""
    kinds = [k for k, wanted in (("ipc", ipc), ("uts", uts)) if wanted]
    if not kinds:
        return {}
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = {k: os.path.join(directory, k) for k in kinds}
    for path in paths.values():
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    failure: list[BaseException] = []
    flags = (CLONE_NEWIPC if ipc else 0) | (CLONE_NEWUTS if uts else 0)

    def worker() -> None:
        # unshare() changes only this thread's namespaces; the thread ends right after.
        try:
            syscalls.unshare(flags)
            if uts and hostname:
                syscalls.sethostname(hostname)
            tid = threading.get_native_id()
            for kind, path in paths.items():
                syscalls.mount(f"/proc/self/task/{tid}/ns/{kind}", path, None, MS_BIND)
        except BaseException as e:  # reported to the caller below
            failure.append(e)

    thread = threading.Thread(target=worker, name="pinns")
    thread.start()
    thread.join()
    if failure:
        unpin(paths, syscalls)
        raise failure[0]
    return paths


def unpin(paths: dict[str, str], syscalls: Syscalls = _KERNEL) -> None:
    """Unmounts and removes the pins; the namespaces end with their last user. Repeatable."""
    for path in paths.values():
        try:
            syscalls.umount2(path, MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
