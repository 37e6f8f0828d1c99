"""The shim's control protocol: JSON lines over a unix stream socket, <root>/<id>/shim.sock (0600,
in a 0700 directory: root only).

A client writes one JSON object per line and reads one JSON object per line back, in order; a
connection carries any number of requests. Every answer is {"ok": true, ...the fields below} or
{"ok": false, "error": "one line saying what was wrong"}. A malformed request (not JSON, not an
object, an unknown op, a field of the wrong type) gets such an error and the connection stays
usable; a request line longer than MAX_REQUEST gets the error and the connection is closed.

    {"op": "state"}
        -> {"ok": true, "id": ID, "status": "running" | "stopped", "pid": INIT_PID,
            "shim_pid": PID, "started_at": TIME, "exit": EXIT | null}
    {"op": "kill", "signal": 15 | "SIGTERM" | "TERM", "all": false}
        -> {"ok": true}
        signal defaults to SIGTERM; "all" signals every process of the container (through
        `runtime kill --all`). Refused once the container has stopped.
    {"op": "wait"}
        -> {"ok": true, "exit": EXIT}
        answered when the container exits, at once if it already has.
    {"op": "exec", "args": ["sh", "-c", "..."], "env": ["K=V"], "cwd": "/", "timeout": 5.0}
        -> {"ok": true, "exit_code": N, "signal": N, "timed_out": false,
            "stdout": "...", "stderr": "...", "truncated": false}
        runs the process in the container (`runtime exec`), env/cwd/timeout optional. stdout and
        stderr are kept up to EXEC_OUTPUT_LIMIT bytes each ("truncated" says when more came),
        decoded as UTF-8 with replacement. After "timeout" seconds the process is killed
        (SIGKILL): exit_code 137, timed_out true, and the output it wrote until then.
    {"op": "attach"}
        -> {"ok": true, "tty": BOOL}
        then the connection carries the container's output, live, beside the log, as frames:
        one byte for the stream (1 stdout, 2 stderr; a terminal has only 1), its length (4
        bytes, big-endian), the bytes. It ends (the shim closes the connection) once the
        container has exited and what it wrote before is out. Output is never waited for: an
        attacher that does not read loses what exceeds ATTACH_BUFFER, as conmon drops it. What
        the client sends on it afterwards is ignored; closing it detaches. Refused once the
        container has stopped. The container's stdin is not on this socket: its writer opens
        the stdin fifo (see shim.stdin_relay), so stdinOnce stays the fifo's own EOF and the
        shim never holds input a slow container has not read.
    {"op": "resize", "width": COLUMNS, "height": ROWS}
        -> {"ok": true}
        sets the size of the container's terminal (an error when it has none).
    {"op": "reopen_log"}
        -> {"ok": true}
        reopens the container's log file by its path (after a rotation renamed it).
    {"op": "shutdown"}
        -> {"ok": true}
        deletes the container (`runtime delete --force`, which kills it if it still runs),
        answers, removes the shim's state directory and exits.

EXIT is the container's exit record (see shim.exitfile): {"pid", "exit_code", "signal",
"oom_killed", "started_at", "finished_at"}; TIME is RFC 3339 UTC with nanoseconds.
"""
from __future__ import annotations

import json
import os

import _json

MAX_REQUEST = 1 << 20
EXEC_OUTPUT_LIMIT = 64 * 1024
ATTACH_BUFFER = 1 << 20
OPS = ("state", "kill", "wait", "exec", "attach", "resize", "reopen_log", "shutdown")
STDOUT_FRAME = 1
STDERR_FRAME = 2


class BadRequest(Exception):
    """A request the shim cannot act on; its message is the one line the client gets back."""


def _unencodable(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")


# json's C encoder and scanner, made once and called directly: json.dumps and json.loads run
# several Python functions (and a regex) around them per call, code a shim would otherwise
# copy into its private pages.
_ENCODE = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None, ":", ",",
                             False, False, True)
_SCAN = json.decoder.JSONDecoder().scan_once


def encode(message: dict) -> bytes:
    return "".join(_ENCODE(message, 0)).encode() + b"\n"


def decode(line: bytes) -> object:
    """One JSON value (ValueError if the line is anything else)."""
    text = line.decode().strip()
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        raise ValueError("expecting a JSON value") from None
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


def frame(stream: int, data: bytes) -> bytes:
    """One attach frame (see above)."""
    return bytes((stream,)) + len(data).to_bytes(4, "big") + data


def write_to(fd: int, message: dict) -> None:
    """Writes one message line to a blocking descriptor; a reader that went away is no error."""
    data = encode(message)
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


def error(text: str) -> dict:
    return {"ok": False, "error": text}


def parse(line: bytes) -> dict:
    """The request object with a known "op", or BadRequest."""
    try:
        request = decode(line)
    except ValueError as e:
        raise BadRequest(f"malformed request: not JSON ({e})") from None
    if not isinstance(request, dict):
        raise BadRequest("malformed request: must be a JSON object")
    op = request.get("op")
    if op not in OPS:
        raise BadRequest(f"malformed request: op must be one of {', '.join(OPS)}, got {op!r}")
    return request


def field(request: dict, name: str, kind: type | tuple[type, ...], default: object) -> object:
    """request[name] checked against kind (bool is no number here), or default when absent."""
    value = request.get(name, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadRequest(f"malformed request: {name} must be {names}, got {value!r}")
    return value
