"""OCI mount options -> mount(2) flags, propagation and filesystem data.

The names are those of mount(8) that runc accepts; anything else that looks like `key=value`
(or a bare word for a non-bind mount, such as devpts' `newinstance`) is filesystem data passed to
the kernel, which judges it.
"""
from __future__ import annotations

from runtime import syscalls as s
from runtime.errors import ConfigError

# name -> (flags to set, flags to clear)
FLAGS = {
    "async": (0, s.MS_SYNCHRONOUS),
    "atime": (0, s.MS_NOATIME),
    "bind": (s.MS_BIND, 0),
    "defaults": (0, 0),
    "dev": (0, s.MS_NODEV),
    "diratime": (0, s.MS_NODIRATIME),
    "dirsync": (s.MS_DIRSYNC, 0),
    "exec": (0, s.MS_NOEXEC),
    "iversion": (s.MS_I_VERSION, 0),
    "lazytime": (s.MS_LAZYTIME, 0),
    "loud": (0, s.MS_SILENT),
    "mand": (s.MS_MANDLOCK, 0),
    "noatime": (s.MS_NOATIME, 0),
    "nodev": (s.MS_NODEV, 0),
    "nodiratime": (s.MS_NODIRATIME, 0),
    "noexec": (s.MS_NOEXEC, 0),
    "noiversion": (0, s.MS_I_VERSION),
    "nolazytime": (0, s.MS_LAZYTIME),
    "nomand": (0, s.MS_MANDLOCK),
    "norelatime": (0, s.MS_RELATIME),
    "nostrictatime": (0, s.MS_STRICTATIME),
    "nosuid": (s.MS_NOSUID, 0),
    "nosymfollow": (s.MS_NOSYMFOLLOW, 0),
    "rbind": (s.MS_BIND | s.MS_REC, 0),
    "relatime": (s.MS_RELATIME, 0),
    "remount": (s.MS_REMOUNT, 0),
    "ro": (s.MS_RDONLY, 0),
    "rw": (0, s.MS_RDONLY),
    "silent": (s.MS_SILENT, 0),
    "strictatime": (s.MS_STRICTATIME, 0),
    "suid": (0, s.MS_NOSUID),
    "symfollow": (0, s.MS_NOSYMFOLLOW),
    "sync": (s.MS_SYNCHRONOUS, 0),
}

PROPAGATION = {
    "private": s.MS_PRIVATE,
    "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED,
    "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE,
    "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE,
    "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}


class ParsedOptions:
    __slots__ = ("flags", "propagation", "data")

    def __init__(self, flags: int, propagation: list[int], data: str) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data


def parse(options: list[str], is_bind: bool, field: str) -> ParsedOptions:
    """Raises ConfigError naming the option when it cannot mean anything for this mount."""
    flags = 0
    propagation = []
    data = []
    for opt in options:
        if opt in FLAGS:
            set_, clear = FLAGS[opt]
            flags = (flags | set_) & ~clear
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif "=" in opt or not is_bind:
            data.append(opt)
        else:
            raise ConfigError(field, f"unknown mount option {opt!r}")
    return ParsedOptions(flags, propagation, ",".join(data))
