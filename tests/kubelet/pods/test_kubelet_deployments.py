"""Deployments end to end: real kubectl, pyapiserver, pycontroller-manager (deployment,
replicaset and garbage collector controllers, as a process) and a real pykubelet running the
pods. A 3-replica Deployment reaches 3 Ready pods; `set image` rolls it with maxUnavailable 0
while a watch on the pods checks that at no moment fewer than 3 are Ready; `rollout undo`
returns to the first template; a deleted pod is replaced; `scale --replicas=0` then 5;
`rollout status` exits 0 when done; Recreate never has old and new pods at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading

import pytest

from kubelet_testlib import IMAGE, running_controller_manager, wait_for

SECOND_IMAGE = IMAGE + "-b"
# Ends at once on SIGTERM (PID 1 ignores signals it has no handler for).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def second_tag(image_root):
    """The test image under a second tag, so that `set image` changes the template."""
    layout = os.path.join(os.path.dirname(image_root), "layout")
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "pycontainer"),
                    "--image-root", image_root, "image", "import", layout,
                    "--name", SECOND_IMAGE], check=True, capture_output=True)
    return SECOND_IMAGE


@pytest.fixture(scope="module")
def controller_manager(api_server, tmp_path_factory):
    with running_controller_manager(api_server, str(tmp_path_factory.mktemp("pycm")),
                                    "--controllers=deployment,replicaset,garbagecollector"
                                    ) as log_path:
        yield log_path


def kubectl(api, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = api.kubectl(*args, timeout=timeout)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def apply(api, namespace: str, manifest: dict) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(manifest, f)
        f.flush()
        kubectl(api, "apply", "-n", namespace, "-f", f.name)


def manifest(name: str, replicas: int, node: str, strategy: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": strategy,
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "nodeSelector": {"kubernetes.io/hostname": node},
                         "terminationGracePeriodSeconds": 5,
                         "containers": [{"name": "c", "image": IMAGE, "command": COMMAND}]}}}}


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready_pods(api, namespace: str) -> list[dict]:
    return [p for p in live(api.pods(namespace)) if is_ready(p)]


class PodWatch:
    """Every pod event of a namespace, from a list's resourceVersion on; `check(pods)` runs on
    the namespace's pods after each event and its complaints are kept."""

    def __init__(self, api, namespace: str, check) -> None:
        self.path = f"/api/v1/namespaces/{namespace}/pods"
        listed = api.client.get(self.path)
        self.pods = {p["metadata"]["name"]: p for p in listed["items"]}
        self.check = check
        self.problems: list[str] = []
        self.events = 0
        self.watch = api.client.watch(self.path, {
            "resourceVersion": listed["metadata"]["resourceVersion"]})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for kind, pod in self.watch:
                name = pod["metadata"]["name"]
                if kind == "DELETED":
                    self.pods.pop(name, None)
                elif kind in ("ADDED", "MODIFIED"):
                    self.pods[name] = pod
                self.events += 1
                problem = self.check(list(self.pods.values()))
                if problem:
                    self.problems.append(problem)
        except Exception:  # the watch is closed by stop()
            pass

    def stop(self) -> None:
        self.watch.close()
        self.thread.join(10)


def tear_down(api, namespace: str, name: str) -> None:
    """Scale to zero and delete, waiting for the pods to be gone (the kubelet is shared)."""
    api.kubectl("scale", "-n", namespace, f"deployment/{name}", "--replicas=0")
    api.kubectl("delete", "-n", namespace, f"deployment/{name}", "--wait=false")
    wait_for(lambda: not api.pods(namespace), timeout=90, what=f"{name}'s pods gone")


def test_deployment_rolls_undoes_heals_and_scales(api, kubelet, namespace, second_tag,
                                                  controller_manager):
    apply(api, namespace, manifest("web", 3, kubelet.node, {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    try:
        wait_for(lambda: len(ready_pods(api, namespace)) == 3, timeout=90,
                 what="3 ready pods")
        kubectl(api, "rollout", "status", "-n", namespace, "deployment/web", "--timeout=90s",
                timeout=100)

        def at_least_three_ready(pods: list[dict]) -> str:
            ready = [p["metadata"]["name"] for p in live(pods) if is_ready(p)]
            return f"only {len(ready)} ready: {ready}" if len(ready) < 3 else ""

        watch = PodWatch(api, namespace, at_least_three_ready)
        try:
            kubectl(api, "set", "image", "-n", namespace, "deployment/web", f"c={second_tag}")
            out = kubectl(api, "rollout", "status", "-n", namespace, "deployment/web",
                          "--timeout=120s", timeout=130).stdout
            assert 'deployment "web" successfully rolled out' in out
        finally:
            watch.stop()
        assert watch.events > 0 and not watch.problems, watch.problems
        pods = ready_pods(api, namespace)
        assert len(pods) == 3 and all(
            p["spec"]["containers"][0]["image"] == second_tag for p in pods)

        history = kubectl(api, "rollout", "history", "-n", namespace,
                          "deployment/web").stdout
        assert "REVISION" in history and "\n2 " in history
        kubectl(api, "rollout", "undo", "-n", namespace, "deployment/web")
        kubectl(api, "rollout", "status", "-n", namespace, "deployment/web", "--timeout=120s",
                timeout=130)
        wait_for(lambda: len(live(api.pods(namespace))) == 3 and all(
            p["spec"]["containers"][0]["image"] == IMAGE for p in live(api.pods(namespace))),
            timeout=60, what="back on the first template")
        template = json.loads(kubectl(api, "get", "-n", namespace, "deployment/web",
                                      "-o", "json").stdout)["spec"]["template"]
        assert template["spec"]["containers"][0]["image"] == IMAGE

        # A deleted pod is replaced.
        victim = ready_pods(api, namespace)[0]["metadata"]["name"]
        kubectl(api, "delete", "pod", "-n", namespace, victim, "--wait=false")
        wait_for(lambda: len(ready_pods(api, namespace)) == 3 and victim not in
                 {p["metadata"]["name"] for p in api.pods(namespace)}, timeout=90,
                 what="a replacement pod")

        kubectl(api, "scale", "-n", namespace, "deployment/web", "--replicas=0")
        wait_for(lambda: not api.pods(namespace), timeout=90, what="no pods")
        kubectl(api, "scale", "-n", namespace, "deployment/web", "--replicas=5")
        kubectl(api, "rollout", "status", "-n", namespace, "deployment/web", "--timeout=120s",
                timeout=130)
        assert len(ready_pods(api, namespace)) == 5
    finally:
        tear_down(api, namespace, "web")


def test_recreate_never_runs_old_and_new_together(api, kubelet, namespace, controller_manager):
    apply(api, namespace, manifest("rec", 2, kubelet.node, {"type": "Recreate"}))
    try:
        kubectl(api, "rollout", "status", "-n", namespace, "deployment/rec", "--timeout=90s",
                timeout=100)

        def one_template(pods: list[dict]) -> str:
            hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in pods}
            return f"pods of {sorted(hashes)} at once" if len(hashes) > 1 else ""

        watch = PodWatch(api, namespace, one_template)
        try:
            kubectl(api, "set", "env", "-n", namespace, "deployment/rec", "V=2")
            kubectl(api, "rollout", "status", "-n", namespace, "deployment/rec",
                    "--timeout=120s", timeout=130)
        finally:
            watch.stop()
        assert watch.events > 0 and not watch.problems, watch.problems
        pods = ready_pods(api, namespace)
        assert len(pods) == 2 and all(p["spec"]["containers"][0].get("env") == [
            {"name": "V", "value": "2"}] for p in pods)
    finally:
        tear_down(api, namespace, "rec")
