"""The library's side of the control socket (shim.protocol): one connection to one shim."""
from __future__ import annotations

import json
import socket
import time

from shim import layout, protocol
from shim.layout import DEFAULT_ROOT
from shim.records import ExecResult, ExitStatus, ShimError, ShimState, checked_id


def connect(container_id: str, shim_root: str = DEFAULT_ROOT) -> Client:
    """A client of the running shim of `container_id`; ShimError when no shim answers (use
    read_exit() to learn how its container ended)."""
    return Client(layout.socket_path(shim_root, checked_id(container_id)))


class Client:
    """Requests go one at a time, in order (not thread-safe: one Client per thread). A method
    raises ShimError with the shim's error line when the shim refuses."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.connect(socket_path)
        except OSError as e:
            self._sock.close()
            raise ShimError(f"no shim answers on {socket_path}: {e.strerror}") from None
        self._buf = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _call(self, request: dict, timeout: float | None = None) -> dict:
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(protocol.encode(request))
            answer = json.loads(self._read_line())
        except TimeoutError:
            raise
        except OSError as e:
            raise ShimError(f"shim {self.socket_path}: {e.strerror or e}") from None
        if not answer.get("ok"):
            raise ShimError(answer.get("error", "the shim refused"))
        return answer

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


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
