"""pycontroller-manager as a process: bad flags, --controllers, leader election between two
managers (only the leader runs controllers; the other takes over after SIGTERM and after
SIGKILL once the lease expires), and an exit when the lease is lost."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from controllers import durations, registry
from controllers_testlib import start_manager, wait_for
from testlib.processes import free_port

BIN = os.path.join(os.path.dirname(sys.executable), "pycontroller-manager")
FAST = ("--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=0.5s")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required: --kubeconfig"),
    (("--kubeconfig", "/nonexistent"), "--kubeconfig: cannot read /nonexistent"),
    (("--kubeconfig", "k", "--controllers", "*,nosuch"),
     '--controllers: "nosuch" is not in the list of known controllers'),
    (("--kubeconfig", "k", "--node-monitor-grace-period", "40"),
     'time: invalid duration "40"'),
    (("--kubeconfig", "k", "--leader-elect=maybe"), 'invalid boolean "maybe"'),
    (("--kubeconfig", "k", "--leader-elect-lease-duration=5s",
      "--leader-elect-renew-deadline=10s"), "leaseDuration must be greater than renewDeadline"),
    (("--kubeconfig", "k", "--leader-elect-resource-lock=endpoints"), 'only "leases"'),
    (("--kubeconfig", "k", "--concurrent-gc-syncs=0"), "must be at least 1"),
    (("--kubeconfig", "k", "--bogus"), "unrecognized arguments: --bogus"),
    (("--kubeconfig", "k", "--secure-port=70000"), "--secure-port: must be between 0 and"),
    (("--kubeconfig", "k", "--tls-cert-file=c"), "go together"),
    (("--kubeconfig", "k", "--node-eviction-rate=-1"), 'must not be negative, not "-1"'),
])
def test_bad_flags_one_line_exit_1(args, message):
    proc = run(*args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_controller_selection_and_durations():
    every = [c.name for c in registry.CONTROLLERS]
    assert {"garbage-collector-controller", "node-lifecycle-controller",
            "taint-eviction-controller"} <= set(every)
    assert [c.name for c in registry.select(["*"])] == \
        [c.name for c in registry.CONTROLLERS if c.enabled_by_default]
    assert "garbage-collector-controller" not in \
        [c.name for c in registry.select(["*", "-garbagecollector"])]
    assert [c.name for c in registry.select(["nodelifecycle"])] == ["node-lifecycle-controller"]
    assert registry.select([]) == []
    assert durations.parse("1m30s") == 90 and durations.parse("500ms") == 0.5
    assert durations.parse("1h") == 3600 and durations.parse("0") == 0


def _lease(client, name: str) -> dict | None:
    try:
        return client.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")
    except Exception:
        return None


def _identity(manager) -> str:
    line = manager.wait_log("identity ")
    return line.split("identity ", 1)[1].split(",", 1)[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_leader_election_one_acts_other_takes_over(request, server, client, sig):
    lease = "cm-" + uuid.uuid4().hex[:8]
    args = ("--controllers=node-lifecycle-controller",
            f"--leader-elect-resource-name={lease}", *FAST)
    first = start_manager(request, server, *args)
    first.wait_log("Started 1 controllers")
    second = start_manager(request, server, *args)
    second.wait_log("attempting to acquire leader lease")
    assert _lease(client, lease)["spec"]["holderIdentity"] == _identity(first)
    transitions = _lease(client, lease)["spec"]["leaseTransitions"]
    # Through renewals of the first, the second keeps trying and never starts a controller.
    for _ in range(3):
        renewed = _lease(client, lease)["spec"]["renewTime"]
        wait_for(lambda: _lease(client, lease)["spec"]["renewTime"] != renewed,
                 what="a renewal")
    renewed = _lease(client, lease)["spec"]["renewTime"]
    wait_for(lambda: _lease(client, lease)["spec"]["renewTime"] != renewed, what="a renewal")
    assert "Starting controller" not in second.log()

    assert first.stop(sig) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert "released lease" in first.log()
    second.wait_log("Started 1 controllers", timeout=30)
    spec = _lease(client, lease)["spec"]
    assert spec["holderIdentity"] == _identity(second)
    assert spec["leaseTransitions"] == transitions + 1
    assert second.stop() == 0
    became = [e["message"] for e in client.get(
        "/api/v1/namespaces/kube-system/events",
        {"fieldSelector": f"involvedObject.name={lease},reason=LeaderElection"})["items"]]
    assert became == [f"{_identity(first)} became leader", f"{_identity(second)} became leader"]


def test_lost_lease_exits_1(request, server, client):
    lease = "cm-" + uuid.uuid4().hex[:8]
    manager = start_manager(request, server, "--controllers=node-lifecycle-controller",
                            f"--leader-elect-resource-name={lease}", *FAST)
    manager.wait_log("Started 1 controllers")
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}"
    # Another holder with a long lease: renewals fail until the renew deadline.
    client.patch(path, {"spec": {"holderIdentity": "usurper", "leaseDurationSeconds": 3600}})
    wait_for(lambda: manager.proc.poll() is not None, timeout=20, what="manager exit")
    assert manager.proc.returncode == 1
    log = manager.log()
    assert "leaderelection lost" in log and "Stopped controllers" in log
    assert _lease(client, lease)["spec"]["holderIdentity"] == "usurper"


def test_without_leader_election_sigterm_is_clean(request, server, client):
    manager = start_manager(request, server, "--leader-elect=false")
    manager.wait_log(f"Started {len(registry.select(['*']))} controllers")
    assert _lease(client, "kube-controller-manager") is None or \
        "acquire" not in manager.log()
    assert manager.stop() == 0
    assert "Stopped controllers" in manager.log()


def _children(pid: int) -> list[int]:
    """Live child processes of pid, whichever of its threads started them."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _start_with_controllers(tmp_path) -> tuple[subprocess.Popen, object]:
    """pyapiserver --controllers=garbage-collector-controller; its log in tmp_path."""
    from testlib.pyapiserver import ADMIN_TOKEN
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{ADMIN_TOKEN},admin,uid-admin,"system:masters"\n')
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "pyapiserver"), "--bind-address",
         "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--token-auth-file", str(tokens), "--controllers=garbage-collector-controller",
         "--kube-controller-manager-arg=--leader-elect=false"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    return server, log


def _end(server: subprocess.Popen, log, children: set[int]) -> None:
    """Whatever the test left: the server, the managers it started (by pid), the log."""
    children |= set(_children(server.pid))
    if server.poll() is None:
        server.kill()
        server.wait()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_apiserver_runs_the_controller_manager_as_a_child(tmp_path):
    """pyapiserver --controllers: the manager starts with the server, a killed manager is
    started again, and SIGTERM to the server ends both."""
    from kubeapi import kubeconfig
    from kubeapi.restclient import ApiClient
    server, log = _start_with_controllers(tmp_path)
    children: set[int] = set()
    client = None
    try:
        text = lambda: open(tmp_path / "server.log").read()  # noqa: E731
        wait_for(lambda: "Started 1 controllers" in text(), timeout=30, what="child manager")
        assert "pycontroller-manager: identity" in text()
        client = ApiClient(kubeconfig.load(str(tmp_path / "data" / "admin.kubeconfig")), "t")
        owner = client.create("/api/v1/namespaces/default/configmaps",
                              {"metadata": {"name": "owner"}})
        client.create("/api/v1/namespaces/default/configmaps", {"metadata": {
            "name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                "name": "owner",
                                                "uid": owner["metadata"]["uid"]}]}})
        client.delete("/api/v1/namespaces/default/configmaps/owner")

        def dep_gone():
            try:
                client.get("/api/v1/namespaces/default/configmaps/dep")
            except Exception as e:
                return "404" in str(e)
            return False
        wait_for(dep_gone, what="collected by the child manager")
        [child] = _children(server.pid)
        children.add(child)
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: "controller manager exited with -9; restarting" in text(),
                 what="restart notice")
        wait_for(lambda: text().count("Started 1 controllers") == 2, timeout=30,
                 what="restarted manager")
        [second] = _children(server.pid)
        children.add(second)
        assert second != child
        server.terminate()
        assert server.wait(30) == 0
        assert not _alive(second)
        assert "pycontroller-manager: exiting" in text().rsplit("Started 1 controllers", 1)[1]
    finally:
        if client is not None:
            client.close()
        _end(server, log, children)


def test_controller_manager_child_ends_with_a_killed_apiserver(tmp_path):
    server, log = _start_with_controllers(tmp_path)
    children: set[int] = set()
    try:
        wait_for(lambda: "Started 1 controllers" in open(tmp_path / "server.log").read(),
                 timeout=30, what="child manager")
        [child] = _children(server.pid)
        children.add(child)
        server.kill()
        server.wait()
        wait_for(lambda: not _alive(child), what="the orphaned manager's exit")
    finally:
        _end(server, log, children)


def _https_get(port: int, path: str) -> tuple[int, str]:
    import http.client
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the manager's self-signed certificate
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_healthz_on_secure_port(request, server):
    port = free_port()
    lease = "cm-" + uuid.uuid4().hex[:8]
    manager = start_manager(request, server, "--controllers=node-lifecycle-controller",
                            f"--leader-elect-resource-name={lease}", *FAST,
                            f"--secure-port={port}", "--bind-address=127.0.0.1")
    manager.wait_log(f"Serving securely on 127.0.0.1:{port}")
    manager.wait_log("Started 1 controllers")
    assert _https_get(port, "/healthz") == (200, "ok")
    assert _https_get(port, "/livez") == (200, "ok")
    assert _https_get(port, "/healthz?verbose") == (
        200, "[+]ping ok\n[+]leaderElection ok\nhealthz check passed\n")
    assert _https_get(port, "/metrics-nope")[0] == 404
    assert manager.stop() == 0
