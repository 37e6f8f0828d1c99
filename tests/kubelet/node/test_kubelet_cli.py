"""pykubelet's command line: bad input gets one line naming the flag or field, exit status 1,
and leaves nothing behind (no root dir, no mount)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from kubelet_testlib import PYKUBELET

pytestmark = pytest.mark.root


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYKUBELET, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("config,args,message", [
    ("maxPods: many\n", [], "pykubelet: maxPods: 'many' must be an integer"),
    ("containerLogMaxSize: lots\n", [],
     "pykubelet: containerLogMaxSize: 'lots' is not a quantity like 10Mi"),
    ("syncFrequency: soon\n", [],
     "pykubelet: syncFrequency: 'soon' is not a duration like 10s or 1m30s"),
    ("", ["--kubeconfig", "/nonexistent/kubeconfig"],
     "pykubelet: --kubeconfig: cannot read /nonexistent/kubeconfig: No such file or directory"),
    ("", ["--node-labels", "novalue"], "pykubelet: --node-labels: 'novalue' is not key=value"),
    ("fileCheckFrequency: 0s\n", ["--pod-manifest-path", "/etc/kubernetes/manifests"],
     "pykubelet: fileCheckFrequency: must be greater than 0"),
    ("", ["--file-check-frequency", "often"],
     "pykubelet: --file-check-frequency: 'often' is not a duration like 10s or 1m30s"),
])
def test_bad_input_one_line_nothing_left(tmp_path, config, args, message):
    (tmp_path / "config.yaml").write_text("kind: KubeletConfiguration\n" + config)
    root = tmp_path / "root"
    result = run("--config", str(tmp_path / "config.yaml"), "--root-dir", str(root), *args)
    assert (result.returncode, result.stderr) == (1, message + "\n")
    assert not root.exists()


def test_root_dir_too_deep_for_the_shim_sockets(tmp_path):
    root = tmp_path / ("d" * 60)
    result = run("--root-dir", str(root), "--hostname-override", "n1")
    assert result.returncode == 1
    assert result.stderr.endswith("is too long for the shims' unix sockets (at most 58 bytes)\n")
    assert not root.exists()


def test_port_in_use_fails_before_anything_exists():
    base = tempfile.mkdtemp(prefix="pyk-")    # short: the shims' sockets live below
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            root = os.path.join(base, "root")
            result = run("--root-dir", root, "--address", "127.0.0.1", "--port", str(port),
                         "--hostname-override", "n1")
        assert result.returncode == 1 and result.stderr.count("\n") == 1
        assert "Address already in use" in result.stderr
        assert not os.path.exists(root)
        with open("/proc/self/mountinfo") as f:
            assert base not in f.read()
    finally:
        shutil.rmtree(base, ignore_errors=True)
