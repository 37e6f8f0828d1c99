"""The container's network namespace as a plugin sees it (CNI_NETNS): opened once, with an
rtnetlink socket inside it, and CNI errors for a path that is missing or is our own namespace."""
from __future__ import annotations

import os

from netns.enter import run_in_netns
from netns.rtnl import RtnlSocket, open_in

from .errors import INVALID_ENVIRONMENT, CNIError


class Sandbox:
    """Use as a context manager; `fd` is an open descriptor of the namespace, `rtnl` a socket
    inside it."""

    __slots__ = ("path", "fd", "rtnl")

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise CNIError(INVALID_ENVIRONMENT, f"CNI_NETNS: cannot open {path!r}: "
                           f"{exc.strerror}") from None
        try:
            st, own = os.fstat(self.fd), os.stat("/proc/self/ns/net")
            if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
                raise CNIError(INVALID_ENVIRONMENT, "CNI_NETNS: is the plugin's own network "
                               "namespace")
            self.rtnl: RtnlSocket = open_in(f"/proc/self/fd/{self.fd}")
        except BaseException:
            os.close(self.fd)
            raise

    def run(self, fn, *args):
        """fn(*args) run inside the namespace (sysctls, sockets)."""
        return run_in_netns(f"/proc/self/fd/{self.fd}", fn, *args)

    def close(self) -> None:
        self.rtnl.close()
        os.close(self.fd)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exists(path: str) -> bool:
    return bool(path) and os.path.exists(path)
