"""The tests and benches find what lies beside the checkout (../shared) from the checkout's own
location, so that a checkout anywhere runs them."""
from __future__ import annotations

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A string literal holding an absolute path into the directory around the checkout (a docstring
# may name /work/shared as an example).
HARD_CODED = re.compile(r"""["']/work/""")


def test_no_hard_coded_paths_beside_the_checkout() -> None:
    found = []
    for top in ("tests", "bench"):
        for root, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if not name.endswith((".py", ".sh")):
                    continue
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        if HARD_CODED.search(line):
                            found.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def _refbin_paths(env: dict[str, str]) -> list[str]:
    code = "from testlib import refbin; print(refbin.REFBIN); print(refbin.CACHE)"
    out = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(REPO, "tests"),
                         env=env, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_refbin_is_found_beside_the_checkout() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYCONTAINER_REFBIN", "PYCONTAINER_TEST_CACHE")}
    assert _refbin_paths(env) == [os.path.join(os.path.dirname(REPO), "shared", "refbin"),
                                  "/var/cache/pycontainer-tests/refbin"]


def test_refbin_and_its_cache_follow_the_environment(tmp_path) -> None:
    env = dict(os.environ, PYCONTAINER_REFBIN=str(tmp_path / "bin"),
               PYCONTAINER_TEST_CACHE=str(tmp_path / "cache"))
    assert _refbin_paths(env) == [str(tmp_path / "bin"), str(tmp_path / "cache" / "refbin")]
