"""Static pods end to end: manifests in a directory run with no API server at all, a changed
manifest restarts the pod, a removed one stops it, a bad one is skipped with one line; with an
API server each static pod has a mirror pod that shows its status and comes back when deleted."""
from __future__ import annotations

import json
import os

import pytest

from kubelet_testlib import IMAGE, wait_for

pytestmark = pytest.mark.root


def _manifest(directory, name: str, command: str, namespace: str | None = None) -> str:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
             "command": ["sh", "-c", command]}]}}
    path = os.path.join(directory, f"{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(pod, f)
    os.replace(path + ".tmp", path)
    return path


def _running(kubelet, pod_name: str) -> dict[str, dict]:
    """pod uid -> its running container's record, of the pods with this name."""
    found = {}
    for name in os.listdir(os.path.join(kubelet.root, "containers")):
        try:
            with open(os.path.join(kubelet.root, "containers", name, "container.json")) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if record["labels"].get("io.kubernetes.pod.name") == pod_name and \
                record["state"] == "CONTAINER_RUNNING":
            found[record["pod_uid"]] = record
    return found


def _log(record: dict) -> str:
    try:
        with open(record["log_path"]) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_static_pods_run_change_and_stop_without_an_api_server(start_kubelet, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    path = _manifest(manifests, "web", "echo v1; sleep 1000")
    (manifests / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\n"
                                        "spec: {}\n")
    (manifests / "notes.txt").write_text("not a manifest")
    kubelet = start_kubelet({"staticPodPath": str(manifests), "fileCheckFrequency": "1s"},
                            standalone=True)
    name = f"web-{kubelet.node}"
    first = wait_for(lambda: _running(kubelet, name), what="the static pod running")
    (uid1, record), = first.items()
    wait_for(lambda: "v1" in _log(record), what="its log")
    assert "could not process manifest file" in kubelet.log()
    assert "bad.yaml: spec.containers: Required value" in kubelet.log()

    _manifest(manifests, "web", "echo v2; sleep 1000")
    changed = wait_for(lambda: (r := _running(kubelet, name)) and uid1 not in r and r,
                       what="the changed pod running instead")
    (uid2, record), = changed.items()
    wait_for(lambda: "v2" in _log(record), what="the new pod's log")

    os.unlink(path)
    wait_for(lambda: not _running(kubelet, name), what="the removed pod stopped")
    wait_for(lambda: not kubelet.container_records(uid2), what="its containers removed")


def test_static_pod_has_a_mirror_pod_that_comes_back(api, start_kubelet, namespace, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    path = _manifest(manifests, "db", "sleep 1000", namespace=namespace)
    kubelet = start_kubelet({"staticPodPath": str(manifests), "fileCheckFrequency": "1s"})
    name = f"db-{kubelet.node}"
    mirror = wait_for(lambda: (p := api.pod(namespace, name)) and
                      p["status"].get("phase") == "Running" and p,
                      what=lambda: f"mirror pod Running: {api.pod(namespace, name)}")
    annotations = mirror["metadata"]["annotations"]
    (static_uid, _), = _running(kubelet, name).items()
    assert annotations["kubernetes.io/config.mirror"] == static_uid
    assert annotations["kubernetes.io/config.source"] == "file"
    assert mirror["metadata"]["uid"] != static_uid
    owner, = mirror["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Node", kubelet.node)
    assert mirror["status"]["containerStatuses"][0]["ready"] is True

    result = api.kubectl("delete", "pod", "-n", namespace, name, "--wait=false")
    assert result.returncode == 0, result.stderr
    again = wait_for(lambda: (p := api.pod(namespace, name)) and
                     p["metadata"]["uid"] != mirror["metadata"]["uid"] and
                     p["status"].get("phase") == "Running" and p,
                     what="the mirror pod made again, Running")
    assert again["status"]["containerStatuses"][0]["restartCount"] == 0
    assert list(_running(kubelet, name)) == [static_uid]     # the pod itself went on

    os.unlink(path)
    wait_for(lambda: api.pod(namespace, name) is None, what="the mirror pod deleted")
    wait_for(lambda: not _running(kubelet, name), what="the static pod stopped")
