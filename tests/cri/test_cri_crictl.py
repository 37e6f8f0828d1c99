"""crictl (cri-tools v1.36), unchanged, drives pycontainer-cri as it drives containerd: pods and
containers through their lifecycle, inspect, logs (-f), exec (-it on a pty), attach,
port-forward, stats, images (pull from a loopback registry with and without credentials, rmi)."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from cri_testlib import IMAGE_FULL, wait_for
from testlib import imagebuild as ib
from testlib.processes import free_port
from testlib.refbin import refbin
from testlib.registry import PASSWORD, USER, Registry

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def cri_pod(cri_daemon, tmp_path):
    """A ready sandbox (its ID, config path); removed with its containers afterwards."""
    config = cri_daemon.pod_config(str(tmp_path / "pod.json"), name=f"p{tmp_path.name[-8:]}")
    sandbox = cri_daemon.crictl("runp", config).stdout.strip()
    try:
        yield sandbox, config
    finally:
        cri_daemon.crictl("rmp", "-f", sandbox, check=False)


def _container(daemon, tmp_path, sandbox: str, pod_config: str, name: str, command: list[str],
               start: bool = True, **extra: object) -> str:
    config = daemon.container_config(str(tmp_path / f"{name}.json"), name=name, command=command,
                                     **extra)
    container = daemon.crictl("create", sandbox, config, pod_config).stdout.strip()
    if start:
        daemon.crictl("start", container)
    return container


def _json(daemon, command: str, *args: str) -> dict:
    return json.loads(daemon.crictl(command, "-o", "json", *args).stdout)


def test_pod_and_container_lifecycle(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    pods = _json(cri_daemon, "pods", "--id", sandbox)["items"]
    assert [p["state"] for p in pods] == ["SANDBOX_READY"]
    status = _json(cri_daemon, "inspectp", sandbox)
    assert status["status"]["network"]["ip"].startswith(cri_daemon.subnet.rsplit(".", 2)[0])
    assert status["info"]["config"]["metadata"]["namespace"] == "pcri"

    container = _container(cri_daemon, tmp_path, sandbox, pod_config, "box",
                           ["sh", "-c", "echo started; exec sleep 3600"])
    listed = _json(cri_daemon, "ps", "--pod", sandbox)["containers"]
    assert [(c["id"], c["state"]) for c in listed] == [(container, "CONTAINER_RUNNING")]
    inspected = _json(cri_daemon, "inspect", container)
    assert inspected["status"]["image"]["image"] == IMAGE_FULL
    assert inspected["status"]["imageRef"].startswith("docker.io/library/busybox@sha256:")
    assert inspected["status"]["logPath"].endswith("box.log")
    assert inspected["info"]["pid"] > 0
    wait_for(lambda: "started" in cri_daemon.crictl("logs", container).stdout,
             what="the container's first line in crictl logs")
    # An abbreviated ID works as with containerd; /etc/hostname is the sandbox's.
    with open(pod_config) as f:
        hostname = json.load(f).get("hostname") or socket.gethostname()
    assert cri_daemon.crictl("exec", container[:12], "cat", "/etc/hostname").stdout \
        == hostname + "\n"

    cri_daemon.crictl("stop", "-t", "1", container)
    stopped = _json(cri_daemon, "inspect", container)["status"]
    # crictl's pods share their PID namespace (pid mode POD): sleep is no PID 1 there, so
    # SIGTERM ends it (143), as under containerd's pause.
    assert stopped["state"] == "CONTAINER_EXITED" and stopped["exitCode"] == 143
    cri_daemon.crictl("rm", container)
    assert _json(cri_daemon, "ps", "-a", "--pod", sandbox)["containers"] == []
    cri_daemon.crictl("stopp", sandbox)
    assert _json(cri_daemon, "pods", "--id", sandbox)["items"][0]["state"] == "SANDBOX_NOTREADY"
    cri_daemon.crictl("rmp", sandbox)
    assert _json(cri_daemon, "pods", "--id", sandbox)["items"] == []


def test_exec_and_logs_follow(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    container = _container(cri_daemon, tmp_path, sandbox, pod_config, "talker",
                           ["sh", "-c", "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                                        "echo two; exec sleep 3600"])
    done = cri_daemon.crictl("exec", container, "sh", "-c", "echo out; echo err >&2; exit 3",
                             check=False)
    # crictl exits 1 and names the command's code, over the streaming Exec as with containerd.
    assert (done.returncode, done.stdout) == (1, "out\n")
    assert "err" in done.stderr and "exit code 3" in done.stderr
    follow = subprocess.Popen([refbin("crictl"), "--runtime-endpoint", cri_daemon.endpoint,
                               "logs", "-f", container], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert follow.stdout.readline() == "one\n"
        cri_daemon.crictl("exec", container, "touch", "/tmp/go")
        assert follow.stdout.readline() == "two\n"
    finally:
        follow.kill()
        follow.wait()
        follow.stdout.close()


def _pty_run(argv: list[str], script: bytes, until: bytes, timeout: float = 30) -> bytes:
    """Runs argv on a new pty, types script, and reads until `until` shows and the process ends."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    seen = b""
    try:
        os.write(master, script)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:     # EIO: the other side closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(master)
    assert until in seen, seen
    return seen


def test_exec_it_on_a_pty(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    container = _container(cri_daemon, tmp_path, sandbox, pod_config, "shell", ["sleep", "3600"])
    out = _pty_run([refbin("crictl"), "--runtime-endpoint", cri_daemon.endpoint, "exec", "-it",
                    container, "sh"], b"tty; echo answer=$((6*7)); exit\n", b"answer=42")
    assert b"/dev/pts/" in out


def test_attach(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    container = _container(cri_daemon, tmp_path, sandbox, pod_config, "reader",
                           ["sh", "-c", "while read line; do echo got-$line; done"], stdin=True)
    attach = subprocess.Popen([refbin("crictl"), "--runtime-endpoint", cri_daemon.endpoint,
                               "attach", "-i", container], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        attach.stdin.write("hello\n")
        attach.stdin.flush()
        assert attach.stdout.readline() == "got-hello\n"
    finally:
        attach.kill()
        attach.wait()
        attach.stdin.close()
        attach.stdout.close()


def test_port_forward(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    _container(cri_daemon, tmp_path, sandbox, pod_config, "web",
               ["httpd", "-f", "-p", "8080", "-h", "/etc"])
    local = free_port()
    forward = subprocess.Popen([refbin("crictl"), "--runtime-endpoint", cri_daemon.endpoint,
                                "port-forward", sandbox, f"{local}:8080"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def fetch() -> bytes | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/passwd", timeout=5) as r:
                    return r.read()
            except OSError:
                return None
        assert b"root:x:0:0" in wait_for(fetch, what="the pod's httpd through crictl "
                                                    "port-forward")
    finally:
        forward.kill()
        forward.wait()


def test_stats_and_statsp(cri_daemon, cri_pod, tmp_path):
    sandbox, pod_config = cri_pod
    container = _container(cri_daemon, tmp_path, sandbox, pod_config, "busy",
                           ["sh", "-c", "dd if=/dev/zero of=/tmp/f bs=1k count=64; "
                                        "exec sleep 3600"])
    wait_for(lambda: cri_daemon.crictl("exec", container, "test", "-e", "/tmp/f",
                                       check=False).returncode == 0, what="the file written")
    stats = _json(cri_daemon, "stats", "--id", container)["stats"]
    assert len(stats) == 1
    s = stats[0]
    assert s["attributes"]["id"] == container
    assert int(s["cpu"]["usageCoreNanoSeconds"]["value"]) > 0
    assert int(s["memory"]["workingSetBytes"]["value"]) > 0
    assert int(s["writableLayer"]["usedBytes"]["value"]) >= 64 * 1024
    pods = _json(cri_daemon, "statsp", "--id", sandbox)["stats"]
    assert [p["attributes"]["id"] for p in pods] == [sandbox]
    linux = pods[0]["linux"]
    assert int(linux["memory"]["workingSetBytes"]["value"]) > 0
    assert [c["attributes"]["id"] for c in linux["containers"]] == [container]
    assert linux["network"]["defaultInterface"]["name"] == "eth0"


@pytest.fixture(scope="module")
def cri_registry(tmp_path_factory):
    """A registry with htpasswd auth holding the tests' busybox as auth/busybox:pulled."""
    workdir = str(tmp_path_factory.mktemp("cri-registry"))
    htpasswd = os.path.join(workdir, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", htpasswd, USER, PASSWORD], check=True,
                   capture_output=True)
    reg = Registry(workdir, {"htpasswd": {"realm": "pycontainer-test", "path": htpasswd}})
    try:
        # An image of its own (not the store's busybox: CRI removes a whole image, every name
        # of it, so an image shared with the other tests' could not be removed alone).
        layer = ib.LayerTar().file("pulled", b"an image that only this test pulls\n").bytes()
        layout = os.path.join(workdir, "layout")
        image = ib.Image([layer], ib.image_config([layer]))
        ib.write_oci_layout(layout, [image.descriptor(
            annotations={"org.opencontainers.image.ref.name": "latest"})], [image])
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"--dest-creds={USER}:{PASSWORD}", f"oci:{layout}",
                        f"docker://{reg.host}/auth/busybox:pulled"],
                       check=True, capture_output=True, timeout=120)
        yield reg
    finally:
        reg.close()


def test_images_pull_with_credentials_and_rmi(cri_daemon, cri_registry):
    ref = f"{cri_registry.host}/auth/busybox:pulled"
    denied = cri_daemon.crictl("pull", ref, check=False)
    assert denied.returncode != 0
    cri_daemon.crictl("pull", "--creds", f"{USER}:{PASSWORD}", ref)
    images = _json(cri_daemon, "images")["images"]
    pulled = [i for i in images if ref in i["repoTags"]]
    assert len(pulled) == 1 and pulled[0]["id"].startswith("sha256:")
    assert _json(cri_daemon, "inspecti", ref)["status"]["repoTags"] == [ref]
    cri_daemon.crictl("rmi", ref)
    assert not [i for i in _json(cri_daemon, "images")["images"] if ref in i["repoTags"]]
    assert [i for i in _json(cri_daemon, "images")["images"] if IMAGE_FULL in i["repoTags"]]


def test_unix_socket_only(cri_daemon):
    """The daemon answers on its socket only, which is not world-accessible."""
    assert oct(os.stat(cri_daemon.socket).st_mode & 0o777) == "0o660"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(cri_daemon.socket)
