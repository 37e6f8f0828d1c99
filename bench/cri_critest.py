"""The whole critest (cri-tools v1.36) against pycontainer-cri and containerd 1.6 side by side, as
tests/cri/test_cri_critest.py runs its CI subset: both pass counts, and every spec whose outcome
differs between the two.

    sudo .venv/bin/python bench/cri_critest.py [--skip REGEX]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "tests/cri", "bench"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)   # before tests/: its package-named test folders must not shadow ours

from stats import load  # noqa: E402
from testlib import critest_images  # noqa: E402
from test_cri_critest import KNOWN_DIFFERENCES, side_by_side  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", default="digest",
                        help="critest's -ginkgo.skip (default: the digest specs, whose upstream "
                             "images cannot be rebuilt)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cri-critest-")
    try:
        with critest_images.world(workdir) as world:
            mine, reference, summary = side_by_side(world, args.skip)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(load())
    print(summary)
    for name in sorted(set(mine) | set(reference)):
        ours, theirs = mine.get(name, "-"), reference.get(name, "-")
        if ours != theirs:
            note = " (known: see KNOWN_DIFFERENCES)" if name in KNOWN_DIFFERENCES else ""
            print(f"  pycontainer {ours:8} containerd {theirs:8} {name}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
