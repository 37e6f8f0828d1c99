"""Volumes through the real API server, pykubelet and shims: emptyDir shared by two containers
and on a tmpfs with medium Memory, configMap updates reaching the mounted file through the
..data swap, a secret on a tmpfs with its defaultMode, downwardAPI labels, a projected volume of
all three, an optional source that does not exist, hostPath types,
subPath and readOnly, sizeLimit eviction; and nothing left behind once the pod is gone."""
from __future__ import annotations

import base64
import os
import socket
import tempfile

import pytest

from kubelet_testlib import IMAGE, wait_for

pytestmark = pytest.mark.root


def container(name: str, script: str, mounts: list[dict]) -> dict:
    return {"name": name, "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], "volumeMounts": mounts}


def pod(name: str, node: str, containers: list[dict], volumes: list[dict],
        labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": containers, "volumes": volumes}}


def logs(api, namespace: str, name: str, container_name: str) -> str:
    r = api.kubectl("logs", "-n", namespace, name, "-c", container_name)
    return r.stdout if r.returncode == 0 else ""


def waiting(api, namespace: str, name: str) -> dict:
    return api.container_status(namespace, name).get("state", {}).get("waiting") or {}


def mounts_below(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


def delete_and_check_nothing_left(api, kubelet, namespace: str, name: str, uid: str) -> None:
    api.delete_pod(namespace, name)
    wait_for(lambda: api.pod(namespace, name) is None, timeout=60, what="pod deleted")
    pod_dir = os.path.join(kubelet.root, "pods", uid)
    wait_for(lambda: not os.path.exists(pod_dir), what="pod directory removed")
    assert mounts_below(pod_dir) == []


def test_empty_dir_shared_by_two_containers_and_memory_medium_is_tmpfs(api, kubelet,
                                                                        namespace):
    mounts = [{"name": "shared", "mountPath": "/shared"}, {"name": "mem", "mountPath": "/mem"}]
    api.create_pod(namespace, pod("share", kubelet.node, [
        container("writer", "echo from-writer > /shared/note; echo fast > /mem/x; "
                  "exec sleep 1000", mounts),
        container("reader", "until [ -f /shared/note ]; do sleep 0.1; done; cat /shared/note; "
                  "until [ -f /mem/x ]; do sleep 0.1; done; cat /mem/x; "
                  "grep ' /mem ' /proc/mounts; exec sleep 1000", mounts)],
        [{"name": "shared", "emptyDir": {}},
         {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]))
    running = wait_for(lambda: api.running(namespace, "share"), what="pod Running")
    out = wait_for(lambda: "tmpfs" in (text := logs(api, namespace, "share", "reader")) and text,
                   what="reader's log")
    lines = out.splitlines()
    assert lines[:2] == ["from-writer", "fast"]
    assert lines[2].split()[2] == "tmpfs" and "size=8192k" in lines[2]
    uid = running["metadata"]["uid"]
    base = os.path.join(kubelet.root, "pods", uid, "volumes", "kubernetes.io~empty-dir")
    with open(os.path.join(base, "shared", "note")) as f:
        assert f.read() == "from-writer\n"
    assert oct(os.stat(os.path.join(base, "shared")).st_mode & 0o777) == "0o777"
    assert os.path.join(base, "mem") in mounts_below(kubelet.root)
    delete_and_check_nothing_left(api, kubelet, namespace, "share", uid)


@pytest.mark.slow
def test_config_map_secret_and_downward_api_volumes(api, start_kubelet, namespace):
    kubelet = start_kubelet(config={"syncFrequency": "2s"})
    client = api.client
    client.create(f"/api/v1/namespaces/{namespace}/configmaps", {
        "metadata": {"name": "conf"}, "data": {"greeting": "v1", "other": "x"}})
    client.create(f"/api/v1/namespaces/{namespace}/secrets", {
        "metadata": {"name": "creds"},
        "data": {"password": base64.b64encode(b"s3cret").decode()}})
    # The watcher of /conf/greeting starts once the rest is written: had it run beside, its
    # lines could land inside theirs (both write to the same stdout).
    script = ("cat /creds/password; echo; stat -L -c %a /creds/password; "
              "grep ' /creds ' /proc/mounts | cut -d' ' -f3; "
              "cat /conf-items/sub/g; echo; stat -L -c %a /conf-items/sub/g; "
              "cat /info/labels; echo; cat /info/name; echo; "
              "cat /all/cm/g /all/password /all/pod; echo; stat -L -c %a /all/password; "
              "ls /none | wc -l; "
              "touch /conf/new 2>/dev/null || echo read-only; "
              "last=; while true; do v=$(cat /conf/greeting); "
              "if [ \"$v\" != \"$last\" ]; then echo \"greeting=$v\"; last=$v; fi; "
              "sleep 0.2; done & exec sleep 1000")
    api.create_pod(namespace, pod("cfg", kubelet.node, [container("c", script, [
        {"name": "conf", "mountPath": "/conf"},
        {"name": "conf-items", "mountPath": "/conf-items"},
        {"name": "creds", "mountPath": "/creds"},
        {"name": "info", "mountPath": "/info"},
        {"name": "all", "mountPath": "/all"},
        {"name": "none", "mountPath": "/none"}])], [
        {"name": "conf", "configMap": {"name": "conf"}},
        {"name": "conf-items", "configMap": {"name": "conf", "items": [
            {"key": "greeting", "path": "sub/g", "mode": 0o600}]}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "conf", "items": [{"key": "greeting", "path": "cm/g"}]}},
            {"secret": {"name": "creds"}},
            {"secret": {"name": "absent", "optional": True}},
            {"downwardAPI": {"items": [
                {"path": "pod", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        {"name": "none", "configMap": {"name": "absent", "optional": True}}],
        labels={"app": "web", "tier": "front"}))
    running = wait_for(lambda: api.running(namespace, "cfg"), what="pod Running")
    out = wait_for(lambda: "greeting=v1" in (t := logs(api, namespace, "cfg", "c")) and t,
                   what="container output")
    assert out.splitlines() == ["s3cret", "400", "tmpfs", "v1", "600", 'app="web"',
                                'tier="front"', "cfg", "v1s3cretcfg", "440", "0", "read-only",
                                "greeting=v1"]
    # On the host: the atomic writer's layout.
    uid = running["metadata"]["uid"]
    conf_dir = os.path.join(kubelet.root, "pods", uid, "volumes", "kubernetes.io~configmap",
                            "conf")
    assert os.readlink(os.path.join(conf_dir, "greeting")) == "..data/greeting"
    first = os.readlink(os.path.join(conf_dir, "..data"))
    assert first.startswith("..") and os.path.isdir(os.path.join(conf_dir, first))
    # An update reaches the mounted file within a sync period.
    client.patch(f"/api/v1/namespaces/{namespace}/configmaps/conf", {"data": {"greeting": "v2"}})
    wait_for(lambda: "greeting=v2" in logs(api, namespace, "cfg", "c"), timeout=30,
             what="the update in the container")
    second = os.readlink(os.path.join(conf_dir, "..data"))
    assert second != first and not os.path.exists(os.path.join(conf_dir, first))
    delete_and_check_nothing_left(api, kubelet, namespace, "cfg", uid)


def test_host_path_types(api, kubelet, namespace):
    base = tempfile.mkdtemp(prefix="pyk-hostpath-")
    sock_path = os.path.join(base, "sock")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(sock_path)
        volumes = [
            {"name": "made", "hostPath": {"path": f"{base}/made/dir", "type": "DirectoryOrCreate"}},
            {"name": "file", "hostPath": {"path": f"{base}/new-file", "type": "FileOrCreate"}},
            {"name": "sock", "hostPath": {"path": sock_path, "type": "Socket"}},
            {"name": "null", "hostPath": {"path": "/dev/null", "type": "CharDevice"}}]
        mounts = [{"name": "made", "mountPath": "/made"}, {"name": "file", "mountPath": "/f"},
                  {"name": "sock", "mountPath": "/s"}, {"name": "null", "mountPath": "/n"}]
        api.create_pod(namespace, pod("types", kubelet.node, [container(
            "c", "echo hi > /made/out; echo file > /f; test -S /s && test -c /n && echo ok; "
                 "exec sleep 1000", mounts)], volumes))
        wait_for(lambda: api.running(namespace, "types"), what="pod Running")
        wait_for(lambda: logs(api, namespace, "types", "c") == "ok\n", what="checks")
        with open(f"{base}/made/dir/out") as f:
            assert f.read() == "hi\n"
        with open(f"{base}/new-file") as f:
            assert f.read() == "file\n"
        # The wrong type: the container waits, with the kubelet's message.
        api.create_pod(namespace, pod("wrong", kubelet.node, [container(
            "c", "exec sleep 1000", [{"name": "d", "mountPath": "/d"}])],
            [{"name": "d", "hostPath": {"path": base, "type": "File"}}]))
        state = wait_for(lambda: waiting(api, namespace, "wrong").get("message") and
                         waiting(api, namespace, "wrong"), what="waiting with a message")
        message = ('MountVolume.SetUp failed for volume "d" : hostPath type check '
                   f"failed: {base} is not a file")
        assert state == {"reason": "ContainerCreating", "message": message}
        assert api.phase(namespace, "wrong") == "Pending"
        event = wait_for(lambda: next((e for e in api.events(namespace, "wrong")
                                       if e["reason"] == "FailedMount"), None),
                         what="FailedMount event")
        assert (event["type"], event["message"]) == ("Warning", message)
    finally:
        sock.close()
        for name in ("types", "wrong"):
            api.delete_pod(namespace, name, grace=0)
        wait_for(lambda: not api.pods(namespace), timeout=60, what="pods gone")
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_sub_path_and_read_only(api, kubelet, namespace):
    base = tempfile.mkdtemp(prefix="pyk-subpath-")
    try:
        os.symlink("/etc", os.path.join(base, "escape"))
        api.create_pod(namespace, pod("sub", kubelet.node, [container(
            "c", "echo in-sub > /w/file; touch /ro/x 2>/dev/null || echo ro-refused; "
                 "exec sleep 1000",
            [{"name": "data", "mountPath": "/w", "subPath": "a/b"},
             {"name": "data", "mountPath": "/ro", "readOnly": True}])],
            [{"name": "data", "emptyDir": {}}]))
        running = wait_for(lambda: api.running(namespace, "sub"), what="pod Running")
        wait_for(lambda: logs(api, namespace, "sub", "c") == "ro-refused\n", what="output")
        volume = os.path.join(kubelet.root, "pods", running["metadata"]["uid"], "volumes",
                              "kubernetes.io~empty-dir", "data")
        with open(os.path.join(volume, "a", "b", "file")) as f:
            assert f.read() == "in-sub\n"
        # A subPath through a symlink out of the volume is refused.
        api.create_pod(namespace, pod("escape", kubelet.node, [container(
            "c", "exec sleep 1000", [{"name": "h", "mountPath": "/x", "subPath": "escape"}])],
            [{"name": "h", "hostPath": {"path": base}}]))
        state = wait_for(lambda: waiting(api, namespace, "escape").get("message") and
                         waiting(api, namespace, "escape"), what="refused")
        assert state["reason"] == "CreateContainerConfigError"
        assert "is not within the volume" in state["message"]
    finally:
        for name in ("sub", "escape"):
            api.delete_pod(namespace, name, grace=0)
        wait_for(lambda: not api.pods(namespace), timeout=60, what="pods gone")
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_empty_dir_over_its_size_limit_evicts_the_pod(api, kubelet, namespace):
    api.create_pod(namespace, pod("hog", kubelet.node, [container(
        "c", "head -c 3000000 /dev/zero > /scratch/big; exec sleep 1000",
        [{"name": "scratch", "mountPath": "/scratch"}])],
        [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}]))
    evicted = wait_for(lambda: (p := api.pod(namespace, "hog")) and
                       p["status"].get("phase") == "Failed" and p, timeout=60, what="evicted")
    assert evicted["status"]["reason"] == "Evicted"
    assert evicted["status"]["message"] == \
        'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    wait_for(lambda: "terminated" in api.container_status(namespace, "hog")["state"],
             what="container killed")
    delete_and_check_nothing_left(api, kubelet, namespace, "hog", evicted["metadata"]["uid"])
