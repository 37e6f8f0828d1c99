"""Terminals on the runtime's side: the pty master received over the console socket, and the
session when the runtime holds the master itself (`run`/`exec` in the foreground with a
terminal and no --console-socket). The container's side is runtime.init.terminal.
"""
from __future__ import annotations

import fcntl
import os
import termios


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
