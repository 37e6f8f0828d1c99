"""Terminals: the container's pty, its master sent over the console socket (runc's protocol:
one SCM_RIGHTS message), and the runtime's side when it holds the master itself (`run`/`exec`
in the foreground with a terminal and no --console-socket).
"""
from __future__ import annotations

import fcntl
import os
import stat
import termios

from linux.syscalls import Syscalls
from runtime.init import mountfd, securejoin
from runtime.errors import PycontainerError

# <asm-generic/ioctls.h>; Python's termios module does not export these two.
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def winsize(rows: int, cols: int) -> bytes:
    return rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)


def open_pty() -> tuple[int, str]:
    """A new pty in the current /dev/pts: (master fd, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, bytes(4))
    number = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, bytes(4)), "little")
    return master, f"/dev/pts/{number}"


def setup_in_container(syscalls: Syscalls, console_socket: int, size: tuple[int, int] | None,
                       bind_console: bool) -> None:
    """Gives the process a controlling terminal on a new pty and sends the master away.

    Called in the container after pivot_root, so the pty belongs to the container's devpts.
    """
    master, slave_path = open_pty()
    if size and size[0] and size[1]:
        fcntl.ioctl(master, termios.TIOCSWINSZ, winsize(*size))
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    syscalls.send_fd(console_socket, master, "/dev/ptmx")
    os.close(master)
    os.close(console_socket)
    if bind_console:
        _bind_console(syscalls, slave)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _bind_console(syscalls: Syscalls, slave: int) -> None:
    """Binds the pty over /dev/console, which must be a file or a node of the container's own,
    not a symlink to follow (CVE-2025-52565); the pty bound is the one open, not a path."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        console = securejoin.walk(root, "/dev/console", create="file", follow_last=False)
    finally:
        os.close(root)
    try:
        mode = console.st.st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            what = "a symlink" if stat.S_ISLNK(mode) else "not a file"
            raise PycontainerError(f"process.terminal: /dev/console in the container is {what}; "
                                   "refusing to bind the terminal over it")
        os.close(mountfd.bind(syscalls, slave, console.fd, recursive=False))
    finally:
        os.close(console.fd)


def receive_master(sock: object) -> int:
    """The pty master sent by the container (runtime side)."""
    import socket

    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("the container sent no terminal over the console socket")
    return fds[0]


class TerminalSession:
    """Relays the user's terminal to the container's pty master and back, in a thread, while the
    main thread waits for the process; the user's terminal is raw meanwhile and follows resizes."""

    def __init__(self, master: int) -> None:
        import signal
        import threading
        import tty

        self.master = master
        self._stop_r, self._stop_w = os.pipe()
        self._saved = termios.tcgetattr(0) if os.isatty(0) else None
        if self._saved is not None:
            tty.setraw(0)
            self._resize()
            signal.signal(signal.SIGWINCH, lambda *_: self._resize())
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _resize(self) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8)))

    def _relay(self) -> None:
        import select

        sources = [self.master, 0, self._stop_r]
        while True:
            ready, _, _ = select.select(sources, [], [])
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: no process holds the pty any more
                    data = b""
                if not data:
                    return
                _write_all(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    _write_all(self.master, data)
                else:
                    sources.remove(0)
            if self._stop_r in ready:
                return

    def close(self) -> None:
        """After the process exited: let its last output through, then restore the terminal."""
        self._thread.join(timeout=1.0)
        os.write(self._stop_w, b"x")
        self._thread.join()
        os.close(self._stop_r)
        os.close(self._stop_w)
        if self._saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self._saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
