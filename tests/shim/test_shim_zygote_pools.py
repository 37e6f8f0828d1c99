"""The zygote's fresh pymalloc pools (shim.zygote._fresh_pools): after it, a new object of any
block size comes from the first pages of a fresh pool, not from a free block anywhere in a partly
used pool (each page a shim writes is a page of its own). The first page or the second: what
the interpreter allocates in between moves the busiest sizes on a little."""
from __future__ import annotations

import subprocess
import sys

from shim_testlib import REPO

_PROGRAM = r"""
import gc, sys
from shim import zygote, runtime_cli
for name in runtime_cli.IN_PROCESS_MODULES:
    __import__(name)
zygote._rehearse(sys.argv[1])
gc.collect()
fillers = zygote._fresh_pools()
made = [bytes(size - 33) for size in range(48, 513, 16)]
print(" ".join(str(id(b) % zygote._POOL_SIZE) for b in made))
"""


def test_new_objects_come_from_the_first_page_of_a_pool(tmp_path):
    done = subprocess.run([sys.executable, "-I", "-c",
                           f"import sys; sys.path.insert(0, {REPO!r})\n{_PROGRAM}",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    offsets = [int(o) for o in done.stdout.split()]
    assert len(offsets) == 30 and all(o < 8192 for o in offsets), offsets
