"""The container's output in the CRI log: streams, long and partial lines, a terminal, log
rotation, stdin from a fifo."""
from __future__ import annotations

import os
import re

import pytest

from shim.criolog import MAX_LINE
from shim_testlib import log_records, wait_for

pytestmark = pytest.mark.root

RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def test_streams_and_timestamps(shims):
    info = shims.start("sh", "-c", "echo one; echo two >&2; echo three")
    with shims.connect(info.id) as c:
        assert c.wait(timeout=10).exit_code == 0
    records = log_records(shims.log_path(info.id))
    assert sorted(r[1:] for r in records) == sorted([
        ("stdout", "F", "one"), ("stderr", "F", "two"), ("stdout", "F", "three")])
    assert [r[3] for r in records if r[1] == "stdout"] == ["one", "three"]
    assert all(RFC3339_NANO_UTC.match(r[0]) for r in records)
    assert [r[0] for r in records] == sorted(r[0] for r in records)


def test_long_and_unterminated_lines(shims):
    size = 2 * MAX_LINE + 100
    info = shims.start("sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x; echo; printf tail")
    path = shims.log_path(info.id)
    wait_for(lambda: os.path.exists(path) and "tail" in open(path).read(),
             what="the last partial line")
    records = [r[1:] for r in log_records(path)]
    assert records == [("stdout", "P", "x" * MAX_LINE), ("stdout", "P", "x" * MAX_LINE),
                       ("stdout", "F", "x" * 100), ("stdout", "P", "tail")]


def test_terminal_output_reaches_the_log(shims):
    info = shims.start("sh", "-c", "echo hello from a tty; tty; echo oops >&2", terminal=True)
    with shims.connect(info.id) as c:
        assert c.wait(timeout=10).exit_code == 0
    path = shims.log_path(info.id)
    wait_for(lambda: "oops" in open(path).read(), what="the terminal's output")
    assert [r[1:] for r in log_records(path)] == [
        ("stdout", "F", "hello from a tty"), ("stdout", "F", "/dev/pts/0"),
        ("stdout", "F", "oops")]


def test_reopen_after_rotation(shims):
    info = shims.start("sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done")
    path = shims.log_path(info.id)
    wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="output")
    os.rename(path, path + ".1")
    with shims.connect(info.id) as c:
        c.reopen_log()
    wait_for(lambda: os.path.exists(path) and len(log_records(path)) >= 2, what="the new file")
    old = [int(r[3].split()[1]) for r in log_records(path + ".1")]
    new = [int(r[3].split()[1]) for r in log_records(path)]
    assert old == list(range(len(old))) and new[0] >= len(old)


def test_stdin_from_a_fifo(shims, tmp_path):
    fifo = str(tmp_path / "stdin")
    os.mkfifo(fifo)
    info = shims.start("sh", "-c", "cat; echo done", stdin=fifo)
    with open(fifo, "w") as writer:
        writer.write("hello\nworld\n")
    # The writer closed: the container reads EOF.
    with shims.connect(info.id) as c:
        assert c.wait(timeout=10).exit_code == 0
    path = shims.log_path(info.id)
    wait_for(lambda: "done" in open(path).read(), what="the output")
    assert [r[3] for r in log_records(path)] == ["hello", "world", "done"]
