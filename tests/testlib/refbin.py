"""The reference binaries (crictl, critest, kubelet, kube-apiserver ...), shipped xz-compressed
beside the checkout (../shared/refbin, or $PYCONTAINER_REFBIN) and unpacked once into a cache
($PYCONTAINER_TEST_CACHE/refbin), never into the checkout."""
from __future__ import annotations

import os
import subprocess
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFBIN = os.environ.get("PYCONTAINER_REFBIN", os.path.join(os.path.dirname(REPO), "shared", "refbin"))
CACHE = os.path.join(os.environ.get("PYCONTAINER_TEST_CACHE", "/var/cache/pycontainer-tests"),
                     "refbin")


def refbin(name: str) -> str:
    """The path of the reference binary `name`, unpacked on first use."""
    path = os.path.join(CACHE, name)
    if not os.access(path, os.X_OK):
        os.makedirs(CACHE, exist_ok=True)
        # Per thread: two threads writing one file would leave it open for writing while the
        # other executes it (ETXTBSY).
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as out:
            subprocess.run(["xz", "-dc", os.path.join(REFBIN, f"{name}.xz")], stdout=out,
                           check=True)
        os.chmod(tmp, 0o755)
        os.rename(tmp, path)
    return path
