"""Ephemeral containers end to end with real kubectl, pyapiserver and pykubelet: `kubectl debug
--target` starts one in the pod that sees the target's processes, its log reads with kubectl
logs -c, the pod reports it in ephemeralContainerStatuses, it is never restarted, it goes with
the pod, and `kubectl debug -it` on a terminal attaches to its shell."""
from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from kubelet_testlib import BIN, IMAGE, pod_manifest, wait_for

pytestmark = pytest.mark.root


def _ephemeral_status(api, namespace: str, pod: str, name: str) -> dict:
    found = api.pod(namespace, pod) or {}
    return next((s for s in found.get("status", {}).get("ephemeralContainerStatuses") or []
                 if s["name"] == name), {})


def _terminated(api, namespace: str, pod: str, name: str) -> dict | None:
    return _ephemeral_status(api, namespace, pod, name).get("state", {}).get("terminated")


def _debug(api, namespace: str, pod: str, *args: str) -> str:
    """Runs kubectl debug; the name it gave the ephemeral container."""
    r = api.kubectl("debug", pod, "-n", namespace, f"--image={IMAGE}", *args)
    assert r.returncode == 0, r.stderr
    line = next(line for line in r.stderr.splitlines() + r.stdout.splitlines()
                if line.startswith("Defaulting debug container name to "))
    return line.rsplit(" ", 1)[1].rstrip(".")


def _read_until(master: int, output: bytearray, wanted: bytes, deadline: float) -> None:
    while wanted not in output:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} not seen in {bytes(output)!r}"
        if select.select([master], [], [], left)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:     # EIO: the other end closed
                chunk = b""
            assert chunk, f"{wanted!r} not seen before the end: {bytes(output)!r}"
            output += chunk


def _on_a_terminal(argv: list[str], steps: list[tuple[bytes, bytes]], env: dict[str, str],
                   timeout: float = 60) -> tuple[int, str]:
    """Runs argv with a pty as its stdin, stdout and stderr, as a user at a terminal: for each
    (wait for, type) it waits until the output shows the first, then types the second. Its exit
    code and everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, env={**os.environ, **env})
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        for wanted, typed in steps:
            _read_until(master, output, wanted, deadline)
            os.write(master, typed)
        while select.select([master], [], [], max(deadline - time.monotonic(), 0))[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        return proc.wait(max(deadline - time.monotonic(), 1)), output.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _running_pod(api, kubelet, namespace: str, name: str, command: str) -> dict:
    manifest = pod_manifest(name, kubelet.node, command, grace=1)
    manifest["spec"]["containers"][0]["name"] = "app"
    api.create_pod(namespace, manifest)
    return wait_for(lambda: api.running(namespace, name), what="pod Running")


def test_kubectl_debug_with_a_target_sees_its_processes(api, kubelet, namespace):
    _running_pod(api, kubelet, namespace, "target", "exec sleep 4242")
    name = _debug(api, namespace, "target", "--target=app", "--", "sh", "-c", "ps")
    terminated = wait_for(lambda: _terminated(api, namespace, "target", name),
                          what="the ephemeral container terminated")
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    status = _ephemeral_status(api, namespace, "target", name)
    assert status["containerID"].startswith("pycontainer://")
    assert status["image"] == "docker.io/library/busybox:1.36"
    assert status["ready"] is False and status["restartCount"] == 0 and "started" not in status
    logs = api.kubectl("logs", "-n", namespace, "target", "-c", name)
    assert logs.returncode == 0, logs.stderr
    # The target's init is PID 1 of the namespace they share.
    assert any(line.split()[0] == "1" and "sleep 4242" in line
               for line in logs.stdout.splitlines()[1:]), logs.stdout
    got = json.loads(api.kubectl("get", "pod", "target", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["ephemeralContainers"][0]["targetContainerName"] == "app"
    assert got["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert got["status"]["phase"] == "Running"
    described = api.kubectl("describe", "pod", "target", "-n", namespace).stdout
    assert "Ephemeral Containers:" in described and f"  {name}:" in described, described
    assert "Terminated" in described.split("Ephemeral Containers:")[1]
    # The pod's own container went on as it was.
    assert api.running(namespace, "target")["status"]["containerStatuses"][0][
        "restartCount"] == 0


def test_without_a_target_it_has_a_pid_namespace_of_its_own(api, kubelet, namespace):
    _running_pod(api, kubelet, namespace, "alone", "exec sleep 4243")
    name = _debug(api, namespace, "alone", "--", "sh", "-c", "ps; exit 3")
    terminated = wait_for(lambda: _terminated(api, namespace, "alone", name),
                          what="the ephemeral container terminated")
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    logs = api.kubectl("logs", "-n", namespace, "alone", "-c", name).stdout
    assert "sleep 4243" not in logs and " ps" in logs


def test_an_ephemeral_container_is_never_restarted(api, kubelet, namespace):
    _running_pod(api, kubelet, namespace, "once", "exec sleep 4244")
    name = _debug(api, namespace, "once", "--target=app", "--", "sh", "-c", "echo ran; exit 1")
    wait_for(lambda: _terminated(api, namespace, "once", name), what="it terminated")
    uid = api.pod(namespace, "once")["metadata"]["uid"]
    # A later ephemeral container makes the kubelet sync the pod again: the first one stays
    # as it ended, one run only.
    second = _debug(api, namespace, "once", "--", "true")
    wait_for(lambda: _terminated(api, namespace, "once", second), what="the second terminated")
    assert [r["name"] for r in kubelet.container_records(uid)].count(name) == 1
    status = _ephemeral_status(api, namespace, "once", name)
    assert status["restartCount"] == 0 and status["state"]["terminated"]["exitCode"] == 1
    assert api.kubectl("logs", "-n", namespace, "once", "-c", name).stdout == "ran\n"


def test_a_target_that_is_not_running_waits_as_a_config_error(api, kubelet, namespace):
    manifest = pod_manifest("gone", kubelet.node, "exit 0", restart_policy="OnFailure")
    manifest["spec"]["containers"].append({"name": "app", "image": IMAGE,
                                           "imagePullPolicy": "Never",
                                           "command": ["sleep", "4245"]})
    api.create_pod(namespace, manifest)
    wait_for(lambda: any("terminated" in s["state"] for s in (api.pod(namespace, "gone") or {})
                         .get("status", {}).get("containerStatuses") or []),
             what="container c terminated")
    name = _debug(api, namespace, "gone", "--target=c", "--", "ps")
    waiting = wait_for(lambda: _ephemeral_status(api, namespace, "gone", name).get(
        "state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError" and
        _ephemeral_status(api, namespace, "gone", name)["state"]["waiting"],
        what="CreateContainerConfigError")
    assert waiting["message"] == "unable to find target container c"


def test_it_goes_with_the_pod(api, kubelet, namespace):
    _running_pod(api, kubelet, namespace, "bye", "exec sleep 4246")
    uid = api.pod(namespace, "bye")["metadata"]["uid"]
    name = _debug(api, namespace, "bye", "--target=app", "--", "sleep", "4247")
    wait_for(lambda: "running" in _ephemeral_status(api, namespace, "bye", name).get("state", {}),
             what="the ephemeral container running")
    api.delete_pod(namespace, "bye")
    wait_for(lambda: api.pod(namespace, "bye") is None, timeout=60, what="pod gone")
    # The kubelet removes the containers first and the sandbox after them: a check made
    # between the two found the sandbox still there (CI failed so once).
    wait_for(lambda: not kubelet.container_records(uid) and not kubelet.sandbox_records(uid),
             what="containers and sandbox removed")


@pytest.mark.parametrize("protocol", ["websocket", "spdy"])
def test_kubectl_debug_interactive_on_a_terminal(api, kubelet, namespace, protocol):
    _running_pod(api, kubelet, namespace, "tty", "exec sleep 4248")
    kubectl = shutil.which("kubectl", path=BIN)
    code, output = _on_a_terminal(
        [kubectl, "--kubeconfig", api.server.kubeconfig, "debug", "-it", "tty", "-n", namespace,
         f"--image={IMAGE}", "--target=app", "--", "sh"],
        [(b"If you don't see a command prompt, try pressing enter.", b"\n"),
         (b"# ", b"ps -o pid,args | grep -c 'sleep 424[8]'; tty\n"),
         (b"/dev/pts/", b"exit 3\n")],
        {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"} if protocol == "spdy" else {})
    assert "\n1\r\n" in output.replace("\r\r", "\r"), output
    status = wait_for(lambda: _terminated(api, namespace, "tty", _only_ephemeral(api, namespace,
                                                                               "tty")),
                      what="the interactive ephemeral container terminated")
    assert status["exitCode"] == 3
    # As with the kubelet's attach, the session's end is a success whatever the shell's code.
    assert code == 0 and "Session ended, the ephemeral container will not be restarted" in \
        output, output


def _only_ephemeral(api, namespace: str, pod: str) -> str:
    [one] = api.pod(namespace, pod)["spec"]["ephemeralContainers"]
    assert one["stdin"] and one["tty"]
    return one["name"]
