"""The container's controlling terminal, made inside it: a new pty in the container's devpts
(after pivot_root, or setns for exec), its master sent over the console socket (runc's
protocol: one SCM_RIGHTS message), the slave as stdio and, for the init, over /dev/console."""
from __future__ import annotations

import fcntl
import os
import stat
import termios

from linux.syscalls import Syscalls
from runtime.errors import PycontainerError
from runtime.init import mountfd, securejoin

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
