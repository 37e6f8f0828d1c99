"""The pycontainer-cri daemon's own life: a restart adopts the pods and containers it left running
(as containerd's do, under their shims), a second daemon on a socket in use is refused, and a
stale socket file is taken over."""
from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from testlib.cri_daemon import PYCONTAINER_CRI, CriDaemon

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def cri_own_daemon(cri_image_root):
    daemon = CriDaemon(cri_image_root)
    try:
        yield daemon
    finally:
        daemon.cleanup()


def test_restart_adopts_running_containers(cri_own_daemon, tmp_path):
    d = cri_own_daemon
    d.start()
    pod = d.pod_config(str(tmp_path / "pod.json"))
    sandbox = d.crictl("runp", pod).stdout.strip()
    container = d.crictl("create", sandbox, d.container_config(str(tmp_path / "c.json")),
                         pod).stdout.strip()
    d.crictl("start", container)
    d.stop()
    assert d.shim_processes(), "the container's shim ends with the daemon"
    d.start()
    status = json.loads(d.crictl("inspect", "-o", "json", container).stdout)["status"]
    assert status["state"] == "CONTAINER_RUNNING"
    assert d.crictl("exec", container, "echo", "still here").stdout == "still here\n"
    inspected = json.loads(d.crictl("inspectp", "-o", "json", sandbox).stdout)
    assert inspected["status"]["state"] == "SANDBOX_READY"
    assert inspected["info"]["config"]["metadata"]["name"] == "pod"
    d.crictl("rmp", "-f", sandbox)


def test_socket_in_use_refused_and_stale_taken_over(cri_own_daemon):
    d = cri_own_daemon
    d.start()
    second = subprocess.run([*d.argv(), "--state", d.state + "2"], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 1
    assert second.stderr == f"pycontainer-cri: --listen: {d.socket} is in use by another " \
                            "daemon\n"
    d.stop()
    # A socket file nobody listens on, as a killed daemon leaves it.
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(d.socket)
    d.start()
    assert d.crictl("version").stdout.splitlines()[1] == "RuntimeName:  pycontainer"
    assert os.path.exists(PYCONTAINER_CRI)
