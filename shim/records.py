"""What the shim library takes and gives back (the shim process itself speaks plain dicts)."""
from __future__ import annotations

from dataclasses import dataclass, field

from runtime.errors import PycontainerError
from runtime.state import DEFAULT_ROOT as RUNTIME_ROOT, check_id
from shim.layout import DEFAULT_ROOT
from shim.runtime_cli import default_runtime


class ShimError(Exception):
    """A shim could not do what was asked; the message is one line (the runtime's own error when
    the runtime failed)."""


def checked_id(container_id: str) -> str:
    """The ID if the runtime would take it (it also names the shim's directory), else ShimError."""
    try:
        check_id(container_id)
    except PycontainerError as e:
        raise ShimError(str(e)) from None
    return container_id


@dataclass(frozen=True)
class ShimConfig:
    """One container to run under a shim.

    id: the container's ID (the runtime's too). bundle: the OCI bundle directory; its
    process.terminal decides between pipes and a terminal. log_path: the CRI log file (None:
    the output is read and dropped). stdin: a fifo whose writers feed the container's stdin
    (None: /dev/null); with stdin_once the container reads EOF when the first writer closes it,
    without it the shim holds the fifo open so that writer after writer may come (CRI's
    stdinOnce). runtime: the runtime binary (runc's
    command line), runtime_root its --root.
    """

    id: str
    bundle: str
    log_path: str | None = None
    stdin: str | None = None
    stdin_once: bool = True
    shim_root: str = DEFAULT_ROOT
    runtime_root: str = RUNTIME_ROOT
    runtime: str = field(default_factory=default_runtime)


@dataclass(frozen=True)
class ShimInfo:
    """A running shim: its PID, its container's init PID and its control socket."""

    id: str
    pid: int
    container_pid: int
    socket: str
    state_dir: str


@dataclass(frozen=True)
class ExitStatus:
    """How a container ended. exit_code is 128+N when signal N killed it; oom_killed tells an
    OOM kill (its cgroup's OOM kill count rose) from another SIGKILL. Times are RFC 3339 UTC
    with nanoseconds."""

    pid: int
    exit_code: int
    signal: int
    oom_killed: bool
    started_at: str
    finished_at: str

    @classmethod
    def from_record(cls, record: dict) -> ExitStatus:
        return cls(pid=record["pid"], exit_code=record["exit_code"], signal=record["signal"],
                   oom_killed=record["oom_killed"], started_at=record["started_at"],
                   finished_at=record["finished_at"])


@dataclass(frozen=True)
class ShimState:
    """status is "running" or "stopped" (then exit says how it ended)."""

    id: str
    status: str
    pid: int
    shim_pid: int
    started_at: str
    exit: ExitStatus | None


@dataclass(frozen=True)
class ExecResult:
    """An exec's end: exit_code (128+N when killed by signal N), its stdout and stderr (at most
    64 KiB each; truncated says more came), and whether its timeout killed it."""

    exit_code: int
    signal: int
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
