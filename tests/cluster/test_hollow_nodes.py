"""bench/hollow_nodes.py in small: three hollow nodes on a fresh pyapiserver register, hold
their Leases, see the two pods each that the server's scheduler binds to them and report them
Running; every pod's start is measured and no request failed. Figures are the bench's, not
asserted here."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

from apiserver_load import start_pyapiserver  # noqa: E402
from hollow_nodes import drive  # noqa: E402


def test_hollow_nodes_run_their_pods_on_pyapiserver():
    root = tempfile.mkdtemp(prefix="hollow-smoke-")
    token = "hollow-" + uuid.uuid4().hex
    try:
        with open(os.path.join(root, "tokens.csv"), "w") as f:
            f.write(f'{token},hollow,uid-hollow,"system:masters"\n')
        server = start_pyapiserver(root, token)
        try:
            figures = drive(server.target, 3, 2, 50.0, 60.0,
                            [proc.pid for proc in server.procs])
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert (figures["pods_created"], figures["pods_running"], figures["errors"]) == (6, 6, 0)
    assert (figures["POST nodes count"], figures["POST leases count"],
            figures["PATCH pods/status count"]) == (3, 3, 6)
    assert figures["control_plane_peak_rss_mib"] > 0
