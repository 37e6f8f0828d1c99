"""A minimal rtnetlink client: one NETLINK_ROUTE socket that sends a request (a message body
packed by links.py, addresses.py or routes.py with netlink.py) and returns the bodies of the
replies; kernel errors are raised as OSError.

The socket acts on the network namespace it was opened in: open it through `open_in(path)` to
act on a pod's namespace from any thread.
"""
from __future__ import annotations

import os
import struct
# The C module under `socket`: that one imports enum and selectors, a third of a plugin's start.
from _socket import AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW, socket

from .enter import run_in_netns

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
_HEADER = struct.Struct("=IHHII")
_ERRNO = struct.Struct("=i")
_RECV_SIZE = 1 << 18


class RtnlSocket:
    """One rtnetlink socket. Not shared between threads: open one per worker."""

    __slots__ = ("_sock", "_seq")

    def __init__(self) -> None:
        self._sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        # Dumps filtered by the kernel on the request's header (an address dump of one link),
        # not decoded whole and filtered here: a node with a hundred pods has hundreds of
        # link-local addresses on their veths.
        self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "RtnlSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, msg_type: int, body: bytes, flags: int = NLM_F_ACK) -> list[bytes]:
        """Sends one message of `msg_type` and returns the bodies (without the netlink header)
        of the replies to it. A kernel error comes back as OSError(errno)."""
        (outcome,) = self.batch([(msg_type, body, flags)])
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    def batch(self, messages: list[tuple[int, bytes, int]]) -> list[list[bytes] | OSError]:
        """Sends (type, body, flags) messages in one write, which the kernel handles in order,
        each whatever the one before it did; returns per message its reply bodies or its
        OSError. One system call each way instead of one per message: in a burst of pod starts
        every call is also a wait for the interpreter lock. At most one dump per batch (a
        second one while the first is still being read would get EBUSY)."""
        first = self._seq + 1
        out = []
        for i, (msg_type, body, flags) in enumerate(messages):
            out.append(_HEADER.pack(_HEADER.size + len(body), msg_type, NLM_F_REQUEST | flags,
                                    first + i, 0) + body)
        self._seq += len(messages)
        self._sock.send(b"".join(out))
        replies: list[list[bytes]] = [[] for _ in messages]
        outcomes: list[list[bytes] | OSError | None] = [None] * len(messages)
        pending = len(messages)
        while pending:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset < len(data):
                length, kind, mflags, mseq, _pid = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise OSError(0, "rtnetlink: truncated message")
                i = mseq - first
                if 0 <= i < len(messages) and outcomes[i] is None:
                    if kind == NLMSG_ERROR:
                        (err,) = _ERRNO.unpack_from(data, offset + _HEADER.size)
                        outcomes[i] = OSError(-err, os.strerror(-err)) if err else replies[i]
                    elif kind == NLMSG_DONE:
                        outcomes[i] = replies[i]
                    else:
                        replies[i].append(data[offset + _HEADER.size:offset + length])
                        if not mflags & NLM_F_MULTI and not messages[i][2] & NLM_F_ACK:
                            outcomes[i] = replies[i]
                    if outcomes[i] is not None:
                        pending -= 1
                offset += (length + 3) & ~3
        return outcomes  # type: ignore[return-value]


def raise_first(outcomes: list[list[bytes] | OSError]) -> list[list[bytes]]:
    """The outcomes of a batch when none failed; else the first failure raised."""
    for outcome in outcomes:
        if isinstance(outcome, OSError):
            raise outcome
    return outcomes  # type: ignore[return-value]


def open_in(netns_path: str) -> RtnlSocket:
    """An rtnetlink socket bound to the netns at `netns_path` (FileNotFoundError if missing)."""
    return run_in_netns(netns_path, RtnlSocket)
