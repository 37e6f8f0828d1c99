"""Pure logic, no root: the CRI line splitter, the protocol's framing, exit statuses, whether a
process still runs."""
from __future__ import annotations

import os
import subprocess

import pytest

from shim import client, criolog, exitfile, protocol
from shim.criolog import MAX_LINE


def test_split_whole_lines_and_keeps_the_rest():
    assert criolog.split(b"", b"a\nbb\ncc") == ([(b"F", b"a"), (b"F", b"bb")], b"cc")
    assert criolog.split(b"cc", b"c\n") == ([(b"F", b"ccc")], b"")
    assert criolog.split(b"", b"\n") == ([(b"F", b"")], b"")


def test_split_drops_the_carriage_return_of_crlf():
    assert criolog.split(b"", b"tty line\r\n") == ([(b"F", b"tty line")], b"")
    assert criolog.split(b"", b"a\rb\n") == ([(b"F", b"a\rb")], b"")


def test_split_cuts_long_lines_into_partials():
    line = b"x" * (2 * MAX_LINE + 1)
    assert criolog.split(b"", line + b"\n") == (
        [(b"P", b"x" * MAX_LINE), (b"P", b"x" * MAX_LINE), (b"F", b"x")], b"")
    # Without a newline yet: whole partials go out, the rest waits.
    assert criolog.split(b"", line) == (
        [(b"P", b"x" * MAX_LINE), (b"P", b"x" * MAX_LINE)], b"x")
    assert criolog.split(b"", b"y" * MAX_LINE + b"\n") == ([(b"F", b"y" * MAX_LINE)], b"")


def test_log_file_records(tmp_path):
    path = str(tmp_path / "log")
    log = criolog.CriLog(path, criolog.open_log(path))
    log.write(criolog.STDOUT, b"one\ntw")
    log.write(criolog.STDERR, b"err\n")
    log.write(criolog.STDOUT, b"o\nthr")
    log.finish(criolog.STDOUT)
    log.close()
    with open(path) as f:
        lines = [line.split(" ", 1)[1] for line in f.read().splitlines()]
    assert lines == ["stdout F one", "stderr F err", "stdout F two", "stdout P thr"]


def test_protocol_framing():
    assert protocol.encode({"ok": True, "x": [1, None]}) == b'{"ok":true,"x":[1,null]}\n'
    assert protocol.decode(b' {"op": "state"} ') == {"op": "state"}
    for bad in (b"", b"{", b'{"a": 1} trailing', b"\xff", b"nan"):
        with pytest.raises(ValueError):
            protocol.decode(bad)
    with pytest.raises(protocol.BadRequest, match="^malformed request: op must be one of"):
        protocol.parse(b'{"op": 1}')
    assert protocol.field({"timeout": 2}, "timeout", (int, float), None) == 2
    assert protocol.field({}, "timeout", (int, float), None) is None
    with pytest.raises(protocol.BadRequest, match="timeout must be int or float, got True"):
        protocol.field({"timeout": True}, "timeout", (int, float), None)


def test_exit_codes_follow_the_shell():
    exited_3 = 3 << 8
    killed_9 = 9
    assert exitfile.code_and_signal(exited_3) == (3, 0)
    assert exitfile.code_and_signal(killed_9) == (137, 9)


def test_exit_file_round_trip(tmp_path):
    record = exitfile.record(42, 3 << 8, False, "a", "b")
    exitfile.write(str(tmp_path), record)
    assert exitfile.read(str(tmp_path)) == record
    assert os.listdir(tmp_path) == ["exit.json"]
    assert exitfile.read(str(tmp_path / "none")) is None


def test_a_process_reaped_between_open_and_read_is_not_running():
    """/proc/PID/stat opened, then the process reaped: the read fails with ESRCH, which means
    the process is gone, not an error of the caller (a pod's sync once failed on it)."""
    child = subprocess.Popen(["sleep", "1000"])
    stat = open(f"/proc/{child.pid}/stat", "rb")
    child.kill()
    child.wait()
    with stat:
        assert client._stat_says_running(stat) is False
    assert client._running(child.pid) is False
    assert client._running(os.getpid()) is True
