"""Attaching to a container through its shim: live output beside the log with the streams told
apart, a terminal's output and size, stdin kept open across writers without stdinOnce, a slow
attacher that never stalls the container, the end of the stream at the container's exit."""
from __future__ import annotations

import os

import pytest

import shim
from shim_testlib import log_records, wait_for


def _frames_until_end(client: shim.ShimClient) -> list[tuple[int, bytes]]:
    frames = []
    while (frame := client.read_frame()) is not None:
        frames.append(frame)
    return frames


def _joined(frames: list[tuple[int, bytes]], stream: int) -> bytes:
    return b"".join(data for s, data in frames if s == stream)


def test_attach_gets_both_streams_until_the_exit(shims, tmp_path):
    fifo = str(tmp_path / "stdin")
    os.mkfifo(fifo)
    info = shims.start("sh", "-c", "read go; echo out; echo err >&2; echo more", stdin=fifo)
    with shims.connect(info.id) as c:
        assert c.attach() is False
        with open(fifo, "w") as writer:  # only once attached: nothing is missed
            writer.write("go\n")
        frames = _frames_until_end(c)
    assert _joined(frames, 1) == b"out\nmore\n"
    assert _joined(frames, 2) == b"err\n"
    # the log has it all the same
    path = shims.log_path(info.id)
    wait_for(lambda: "more" in open(path).read(), what="the log")
    records = [(r[1], r[3]) for r in log_records(path)]
    # (two pipes: their order in the log is the order the shim read them in)
    assert [r for r in records if r[0] == "stdout"] == [("stdout", "out"), ("stdout", "more")]
    assert [r for r in records if r[0] == "stderr"] == [("stderr", "err")]


def test_attach_to_a_terminal_and_resize(shims, tmp_path):
    fifo = str(tmp_path / "stdin")
    os.mkfifo(fifo)
    info = shims.start("sh", "-c", "read go; stty size; echo done", stdin=fifo, terminal=True)
    with shims.connect(info.id) as control:
        control.resize(123, 45)
    with shims.connect(info.id) as c:
        assert c.attach() is True
        with open(fifo, "w") as writer:
            writer.write("go\n")
        frames = _frames_until_end(c)
    assert {s for s, _ in frames} == {1}
    output = _joined(frames, 1)
    assert b"45 123" in output and b"done" in output


def test_resize_without_a_terminal_is_refused(shims):
    info = shims.start("sleep", "100")
    with shims.connect(info.id) as c:
        with pytest.raises(shim.ShimError, match="has no terminal"):
            c.resize(80, 24)
        with pytest.raises(shim.ShimError, match="width must be int"):
            c._call({"op": "resize", "width": "80", "height": 24})


def test_stdin_stays_open_without_stdin_once(shims, tmp_path):
    fifo = str(tmp_path / "stdin")
    os.mkfifo(fifo)
    info = shims.start("sh", "-c", "while read line; do echo got $line; done; echo eof",
                       stdin=fifo, stdin_once=False)
    with shims.connect(info.id) as c:
        c.attach()
        for word in ("one", "two"):   # two writers, one after the other
            with open(fifo, "w") as writer:
                writer.write(word + "\n")
        seen = b""
        while b"got two" not in seen:
            frame = c.read_frame()
            assert frame is not None, f"the stream ended early after {seen!r}"
            seen += frame[1]
    assert seen == b"got one\ngot two\n"
    with shims.connect(info.id) as c:
        assert c.state().status == "running"   # no EOF came: it still reads
        c.kill("SIGKILL")
        c.wait(timeout=10)


def test_a_slow_attacher_never_stalls_the_container(shims):
    # 8 MiB of output, far over the attacher's buffer, while the attacher reads nothing.
    info = shims.start("sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' x; echo; echo end")
    with shims.connect(info.id) as slow:
        slow.attach()
        with shims.connect(info.id) as waiter:
            assert waiter.wait(timeout=30).exit_code == 0
        frames = _frames_until_end(slow)
    got = _joined(frames, 1)
    assert len(got) < 8 << 20       # some was dropped for it...
    assert set(got) <= set(b"x\nend")  # ...in whole frames: what came is intact
    path = shims.log_path(info.id)
    wait_for(lambda: "end" in open(path).read()[-200:], what="the log's end")


def test_attach_to_an_exited_container_is_refused(shims):
    info = shims.start("true")
    with shims.connect(info.id) as c:
        c.wait(timeout=10)
        with pytest.raises(shim.ShimError, match="has exited"):
            c.attach()
