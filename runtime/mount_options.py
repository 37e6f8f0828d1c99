"""OCI mount options -> mount(2) flags, propagation and filesystem data.

The names are those of mount(8) that runc accepts; anything else that looks like `key=value`
(or a bare word for a non-bind mount, such as devpts' `newinstance`) is filesystem data passed to
the kernel, which judges it.
"""
from __future__ import annotations

from linux import constants as m
from runtime.errors import ConfigError

# name -> (flags to set, flags to clear)
FLAGS = {
    "async": (0, m.MS_SYNCHRONOUS),
    "atime": (0, m.MS_NOATIME),
    "bind": (m.MS_BIND, 0),
    "defaults": (0, 0),
    "dev": (0, m.MS_NODEV),
    "diratime": (0, m.MS_NODIRATIME),
    "dirsync": (m.MS_DIRSYNC, 0),
    "exec": (0, m.MS_NOEXEC),
    "iversion": (m.MS_I_VERSION, 0),
    "lazytime": (m.MS_LAZYTIME, 0),
    "loud": (0, m.MS_SILENT),
    "mand": (m.MS_MANDLOCK, 0),
    "noatime": (m.MS_NOATIME, 0),
    "nodev": (m.MS_NODEV, 0),
    "nodiratime": (m.MS_NODIRATIME, 0),
    "noexec": (m.MS_NOEXEC, 0),
    "noiversion": (0, m.MS_I_VERSION),
    "nolazytime": (0, m.MS_LAZYTIME),
    "nomand": (0, m.MS_MANDLOCK),
    "norelatime": (0, m.MS_RELATIME),
    "nostrictatime": (0, m.MS_STRICTATIME),
    "nosuid": (m.MS_NOSUID, 0),
    "nosymfollow": (m.MS_NOSYMFOLLOW, 0),
    "rbind": (m.MS_BIND | m.MS_REC, 0),
    "relatime": (m.MS_RELATIME, 0),
    "remount": (m.MS_REMOUNT, 0),
    "ro": (m.MS_RDONLY, 0),
    "rw": (0, m.MS_RDONLY),
    "silent": (m.MS_SILENT, 0),
    "strictatime": (m.MS_STRICTATIME, 0),
    "suid": (0, m.MS_NOSUID),
    "symfollow": (0, m.MS_NOSYMFOLLOW),
    "sync": (m.MS_SYNCHRONOUS, 0),
}

PROPAGATION = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE,
    "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}


# Options the runtime acts on itself, never passed to the kernel: tmpcopyup fills a tmpfs with
# what the image had at its mount point (podman asks for it with --read-only).
RUNTIME_OPTIONS = ("tmpcopyup",)


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
        elif opt in RUNTIME_OPTIONS:
            continue
        elif "=" in opt or not is_bind:
            data.append(opt)
        else:
            raise ConfigError(field, f"unknown mount option {opt!r}")
    return ParsedOptions(flags, propagation, ",".join(data))
