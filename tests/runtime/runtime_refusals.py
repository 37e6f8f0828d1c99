"""How the runtime tests check a refusal: exit 1 and one line on stderr naming what was wrong
(README's promise for bad input), never a traceback."""
from __future__ import annotations


def assert_one_line_error(out, *words: bytes) -> None:
    """out (a CompletedProcess with bytes) failed with exit 1 and one stderr line holding every
    one of words."""
    assert out.returncode == 1, out.stderr
    assert b"Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    for word in words:
        assert word in lines[0], out.stderr
