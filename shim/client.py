"""The library's side of the control socket (shim.protocol): one connection to one shim."""
from __future__ import annotations

import json
import socket
import time
from typing import BinaryIO

from shim import layout, protocol
from shim.layout import DEFAULT_ROOT
from shim.records import ExecResult, ExitStatus, ShimError, ShimState, checked_id


def connect(container_id: str, shim_root: str = DEFAULT_ROOT) -> ShimClient:
    """A client of the running shim of `container_id`; ShimError when no shim answers (use
    read_exit() to learn how its container ended)."""
    return ShimClient(layout.socket_path(shim_root, checked_id(container_id)))


class ShimClient:
    """Requests go one at a time, in order (not thread-safe: one ShimClient per thread). A
    method raises ShimError with the shim's error line when the shim refuses."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.connect(socket_path)
        except OSError as e:
            self._sock.close()
            raise ShimError(f"no shim answers on {socket_path}: {e.strerror}") from None
        self._buf = b""

    def __enter__(self) -> ShimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def _call(self, request: dict, timeout: float | None = None) -> dict:
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(protocol.encode(request))
            return _answer(self._read_line())
        except TimeoutError:
            raise
        except OSError as e:
            raise ShimError(f"shim {self.socket_path}: {e.strerror or e}") from None

    def _read_line(self) -> bytes:
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ShimError(f"shim {self.socket_path} closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def state(self) -> ShimState:
        a = self._call({"op": "state"})
        return ShimState(id=a["id"], status=a["status"], pid=a["pid"], shim_pid=a["shim_pid"],
                         started_at=a["started_at"],
                         exit=ExitStatus.from_record(a["exit"]) if a["exit"] else None)

    def kill(self, signal: int | str = 15, all: bool = False) -> None:
        """Sends `signal` (a number or a name such as "SIGKILL") to the container's init, or
        with all=True to every process in the container."""
        self._call({"op": "kill", "signal": signal, "all": all})

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """Blocks until the container exits. After `timeout` seconds: TimeoutError, and this
        client is closed (the answer it waited for would come later)."""
        try:
            return ExitStatus.from_record(self._call({"op": "wait"}, timeout)["exit"])
        except TimeoutError:
            self.close()
            raise

    def send_wait(self) -> None:
        """Asks for the exit without blocking for it: once fileno() is readable, exit_answer()
        reads it. One thread can so wait for many containers (the kubelet's exit watcher)."""
        try:
            self._sock.sendall(protocol.encode({"op": "wait"}))
        except OSError as e:
            raise ShimError(f"shim {self.socket_path}: {e.strerror or e}") from None
        self._sock.setblocking(False)

    def exit_answer(self) -> ExitStatus | None:
        """After send_wait(): the exit status once its answer is whole, None while it is not.
        ShimError when the shim closed the connection without one (the shim died)."""
        try:
            chunk = self._sock.recv(65536)
        except BlockingIOError:
            return None
        except OSError as e:
            raise ShimError(f"shim {self.socket_path}: {e.strerror or e}") from None
        self._buf += chunk
        if b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            return ExitStatus.from_record(_answer(line)["exit"])
        if not chunk:
            raise ShimError(f"shim {self.socket_path} closed the connection")
        return None

    def exec(self, args: list[str], env: list[str] | None = None, cwd: str | None = None,
             timeout: float | None = None) -> ExecResult:
        """Runs args in the container and waits for its end; after `timeout` seconds the shim
        kills it (timed_out is then True)."""
        request: dict = {"op": "exec", "args": list(args)}
        if env:
            request["env"] = list(env)
        if cwd:
            request["cwd"] = cwd
        if timeout is not None:
            request["timeout"] = timeout
        a = self._call(request)
        return ExecResult(exit_code=a["exit_code"], signal=a["signal"], stdout=a["stdout"],
                          stderr=a["stderr"], timed_out=a["timed_out"], truncated=a["truncated"])

    def attach(self) -> bool:
        """Turns this connection into the container's live output (shim.protocol's attach):
        read_frame() then gives it piece by piece. Returns whether the container has a
        terminal (its output is then all stdout)."""
        self._sock.settimeout(None)
        return bool(self._call({"op": "attach"})["tty"])

    def read_frame(self) -> tuple[int, bytes] | None:
        """After attach(): (stream, data), stream 1 (stdout) or 2 (stderr); None once the
        container has exited and its output is all out (or the shim is gone)."""
        try:
            header = self._read_exactly(5)
            if header is None:
                return None
            data = self._read_exactly(int.from_bytes(header[1:], "big"))
        except OSError:
            return None
        return None if data is None else (header[0], data)

    def _read_exactly(self, size: int) -> bytes | None:
        while len(self._buf) < size:
            chunk = self._sock.recv(max(65536, size - len(self._buf)))
            if not chunk:
                return None
            self._buf += chunk
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def resize(self, width: int, height: int) -> None:
        """Sets the size of the container's terminal."""
        self._call({"op": "resize", "width": width, "height": height})

    def reopen_log(self) -> None:
        """The shim reopens the log file by its path: call it after renaming the file."""
        self._call({"op": "reopen_log"})

    def shutdown(self) -> None:
        """Deletes the container (killing it if it still runs); returns once the shim is gone
        with its state directory."""
        shim_pid = self._call({"op": "state"})["shim_pid"]
        self._call({"op": "shutdown"})
        self._sock.settimeout(None)
        while self._sock.recv(65536):  # the shim closes the connection as it exits
            pass
        self.close()
        # Its descriptors close a moment before its exit completes.
        deadline = time.monotonic() + 5.0
        while _running(shim_pid) and time.monotonic() < deadline:
            time.sleep(0.001)


def _answer(line: bytes) -> dict:
    try:
        answer = json.loads(line)
    except ValueError:
        raise ShimError(f"the shim answered something that is not JSON: {line[:80]!r}") from None
    if not isinstance(answer, dict) or not answer.get("ok"):
        raise ShimError(answer.get("error", "the shim refused") if isinstance(answer, dict)
                        else "the shim refused")
    return answer


def _running(pid: int) -> bool:
    """Whether pid is a process that has not exited (a zombie has)."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb")
    except FileNotFoundError:
        return False
    with stat:
        return _stat_says_running(stat)


def _stat_says_running(stat: BinaryIO) -> bool:
    try:
        data = stat.read()
    except ProcessLookupError:  # reaped between the open and the read
        return False
    return data.rsplit(b")", 1)[1].split()[0] != b"Z"
