"""mount(2) and umount2(2), which the standard library lacks, and their flags.

Here because mounting is this package's job (overlayfs snapshots); the runtime mounts a
container's filesystems through it too. Failures raise OSError with the errno and the arguments.
"""
from __future__ import annotations

import os

from overlay._mount import ffi, lib

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    src = source.encode() if source is not None else ffi.NULL
    fst = fstype.encode() if fstype is not None else ffi.NULL
    dat = data.encode() if data else ffi.NULL
    if lib.mount(src, target.encode(), fst, flags, dat) < 0:
        err = ffi.errno
        raise OSError(err, f"mount {source or 'none'} on {target} (type {fstype or 'none'}, "
                           f"flags {flags:#x}{', ' + data if data else ''}): {os.strerror(err)}")


def umount2(target: str, flags: int = 0) -> None:
    if lib.umount2(target.encode(), flags) < 0:
        err = ffi.errno
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
