"""Pods through the real API server, pykubelet, shims and CNI: running with an IP and logs
readable with kubectl, restart policies and CrashLoopBackOff, init containers, image pull
policies, graceful deletion."""
from __future__ import annotations

import ipaddress
import json
import os
import select
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from kubelet_testlib import BIN, pod_manifest, wait_for

pytestmark = pytest.mark.root


def test_node_registers_ready_with_a_lease(api, kubelet):
    node = wait_for(lambda: api.get(f"/api/v1/nodes/{kubelet.node}"))
    status = node["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False",
                          "PIDPressure": "False"}
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet.port
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert int(status["capacity"]["pods"]) == 110 and status["allocatable"]["memory"].endswith("Ki")
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.")
    assert "docker.io/library/busybox:1.36" in status["images"][0]["names"]
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{kubelet.node}"
    lease = wait_for(lambda: api.get(path))
    assert lease["spec"]["holderIdentity"] == kubelet.node
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


def test_pod_runs_with_an_ip_and_its_log_reads_with_kubectl(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest(
        "web", kubelet.node, "echo hello from $(hostname); echo to stderr >&2; sleep 0.2; "
        "cat /proc/net/dev | grep -c eth0; exec sleep 1000"))
    pod = wait_for(lambda: api.running(namespace, "web"), what="pod Running")
    status = pod["status"]
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(kubelet.subnet)
    assert status["hostIP"] == "127.0.0.1" and status["qosClass"] == "BestEffort"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
        "ContainersReady": "True", "PodScheduled": "True"}
    c = status["containerStatuses"][0]
    assert c["ready"] and c["started"] and c["restartCount"] == 0
    assert c["containerID"].startswith("pycontainer://")
    assert c["image"] == "docker.io/library/busybox:1.36"
    assert c["imageID"].startswith("docker.io/library/busybox@sha256:")
    logs = wait_for(lambda: (r := api.kubectl("logs", "-n", namespace, "web")).returncode == 0
                    and "1\n" in r.stdout and r.stdout, what="log")
    # stdout and stderr are two pipes: their order is not kept between them
    assert sorted(logs.splitlines()) == ["1", "hello from web", "to stderr"]
    tail = api.kubectl("logs", "-n", namespace, "web", "--tail=1", "--timestamps")
    assert tail.stdout.endswith("Z 1\n"), tail.stdout
    # The log file is where the kubelet keeps it.
    uid = pod["metadata"]["uid"]
    with open(f"{kubelet.pod_logs}/{namespace}_web_{uid}/c/0.log") as f:
        assert " stdout F hello from web\n" in f.read()


def test_kubelet_endpoint_wants_credentials(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest("logs", kubelet.node, "echo hi; exec sleep 1000"))
    wait_for(lambda: api.running(namespace, "logs"))
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    url = f"https://127.0.0.1:{kubelet.port}/containerLogs/{namespace}/logs/c"

    def get(token: str | None) -> int:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
    assert get(None) == 401
    assert get("not-a-token") == 401
    admin_token = open(api.server.token_file).read().split(",")[0]
    assert get(admin_token) == 200


@pytest.mark.slow
def test_crash_loop_backs_off_longer_each_time(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest("crash", kubelet.node,
                                           "echo run $(cat /dev/shm/n); echo x >> /dev/shm/n; "
                                           "exit 3"))
    backoffs: set[str] = set()   # the waiting messages, which name the delay

    def observe() -> bool:
        pod = api.pod(namespace, "crash")
        for s in pod["status"].get("containerStatuses") or []:
            waiting = s["state"].get("waiting", {})
            if waiting.get("reason") == "CrashLoopBackOff":
                backoffs.add(waiting["message"].split(" restarting")[0])
            if s["restartCount"] >= 1:
                assert s["lastState"]["terminated"]["exitCode"] == 3
                assert s["lastState"]["terminated"]["reason"] == "Error"
        return "back-off 40s" in backoffs
    wait_for(observe, timeout=90, interval=0.2, what="the third back-off")
    # The kubelet's doubling delay, as it tells it: 10 s, then 20 s, then 40 s.
    assert {"back-off 10s", "back-off 20s", "back-off 40s"} <= backoffs, backoffs
    pod = api.pod(namespace, "crash")
    assert pod["status"]["phase"] == "Running"
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message == (f"back-off 40s restarting failed container=c pod=crash_{namespace}"
                       f"({pod['metadata']['uid']})")
    # The log of the run before the last one.
    previous = api.kubectl("logs", "-n", namespace, "crash", "--previous").stdout
    assert previous in ("run x x\n", "run x x x\n"), previous


@pytest.mark.slow
def test_dead_containers_beyond_the_last_are_collected(api, start_kubelet, namespace):
    kubelet = start_kubelet()
    pod = api.create_pod(namespace, pod_manifest("dies", kubelet.node, "exit 1",
                                                 restart_policy="OnFailure"))
    uid = pod["metadata"]["uid"]
    wait_for(lambda: api.container_status(namespace, "dies").get("restartCount", 0) >= 2,
             timeout=60, what="two restarts")

    def attempts() -> list[int]:
        return sorted(int(r["annotations"]["io.kubernetes.container.restartCount"])
                      for r in kubelet.container_records(uid))
    # Collection runs as soon as the kubelet has its pods listed, then every minute: of the
    # dead containers only the newest stays (the status's last state), beside the newest one.
    wait_for(lambda: attempts()[0] >= 1 and len(attempts()) <= 2, timeout=70,
             what=lambda: f"old dead containers collected (left: {attempts()})")
    status = api.container_status(namespace, "dies")
    assert status["restartCount"] >= 2 and status["lastState"]["terminated"]["exitCode"] == 1


def test_logs_follow_until_the_container_ends(api, kubelet, namespace, tmp_path):
    # Each line waits for a file the test writes after it has read the line before, so the
    # follow must pass lines on as they come and end when the container does.
    manifest = pod_manifest(
        "counter", kubelet.node, "for i in 1 2 3 4 5; do echo line $i; "
        "until [ -e /sync/go$i ]; do sleep 0.05; done; done", restart_policy="Never")
    manifest["spec"]["volumes"] = [{"name": "sync", "hostPath": {"path": str(tmp_path)}}]
    manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "sync", "mountPath": "/sync"}]
    api.create_pod(namespace, manifest)
    wait_for(lambda: api.running(namespace, "counter"), what="Running")
    shm = str(tmp_path)
    follow = subprocess.Popen([shutil.which("kubectl", path=BIN), "--kubeconfig",
                               api.server.kubeconfig, "logs", "-f", "-n", namespace, "counter"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for i in range(1, 6):
            ready, _, _ = select.select([follow.stdout], [], [], 30)
            assert ready, f"no line {i} within 30 s"
            assert follow.stdout.readline() == f"line {i}\n"
            open(os.path.join(shm, f"go{i}"), "w").close()
        assert follow.wait(30) == 0, follow.stderr.read()
        assert follow.stdout.read() == ""
    finally:
        if follow.poll() is None:
            follow.kill()
        follow.communicate()


def test_host_network_pod_shares_the_node_network(api, kubelet, namespace):
    manifest = pod_manifest("hostnet", kubelet.node, "cat /proc/net/dev; exec sleep 1000")
    manifest["spec"]["hostNetwork"] = True
    pod = api.create_pod(namespace, manifest)
    status = wait_for(lambda: api.running(namespace, "hostnet"))["status"]
    assert status["podIP"] == status["hostIP"] == "127.0.0.1"
    logs = wait_for(lambda: api.kubectl("logs", "-n", namespace, "hostnet").stdout)

    def links(text: str) -> set[str]:
        return {line.split(":")[0].strip() for line in text.splitlines() if ":" in line}
    with open("/proc/net/dev") as f:
        host_links = links(f.read())
    assert len(host_links & links(logs)) >= 2 and "eth0" in links(logs)   # the host's links
    sandboxes = os.path.join(kubelet.root, "sandboxes")
    for sandbox_id in os.listdir(sandboxes):
        with open(os.path.join(sandboxes, sandbox_id, "sandbox.json")) as f:
            record = json.load(f)
        if record["uid"] == pod["metadata"]["uid"]:
            assert record["netns"] == "" and "uts" not in record["pins"]


def test_logs_rotate_at_the_size_limit(api, start_kubelet, namespace):
    kubelet = start_kubelet({"containerLogMaxSize": "2Ki", "containerLogMaxFiles": 3,
                             "containerLogMonitorInterval": "1s"})
    pod = api.create_pod(namespace, pod_manifest(
        "chatty", kubelet.node, "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; "
        "done"))
    wait_for(lambda: api.running(namespace, "chatty"))
    directory = f"{kubelet.pod_logs}/{namespace}_chatty_{pod['metadata']['uid']}/c"
    wait_for(lambda: len(os.listdir(directory)) == 3, timeout=20, what="two rotations")
    first = set(os.listdir(directory)) - {"0.log"}
    # Two more rotations: still 0.log and the two newest rotated files, neither of the first.
    wait_for(lambda: not (set(os.listdir(directory)) & first), timeout=20,
             what="two more rotations")
    names = sorted(os.listdir(directory))
    assert len(names) == 3 and names[0] == "0.log" and all(n.startswith("0.log.")
                                                           for n in names[1:]), names

    def consecutive_tail() -> bool:   # the live file holds them (right after a rotation: one)
        tail = api.kubectl("logs", "-n", namespace, "chatty", "--tail=2").stdout.splitlines()
        return len(tail) == 2 and int(tail[1].split()[1]) == int(tail[0].split()[1]) + 1
    wait_for(consecutive_tail, what="the last two lines, in order")


def test_restart_policies(api, kubelet, namespace):
    # /dev/shm belongs to the pod: what the first run leaves there, the second run sees.
    api.create_pod(namespace, pod_manifest(
        "onfailure", kubelet.node, "test -e /dev/shm/ran && exit 0; touch /dev/shm/ran; exit 1",
        restart_policy="OnFailure"))
    api.create_pod(namespace, pod_manifest("never-fails", kubelet.node, "exit 2",
                                           restart_policy="Never"))
    api.create_pod(namespace, pod_manifest("never-ok", kubelet.node, "true",
                                           restart_policy="Never"))
    wait_for(lambda: api.phase(namespace, "onfailure") == "Succeeded", what="OnFailure done")
    wait_for(lambda: api.phase(namespace, "never-fails") == "Failed", what="Never failed")
    wait_for(lambda: api.phase(namespace, "never-ok") == "Succeeded", what="Never succeeded")
    onfailure = api.pod(namespace, "onfailure")["status"]["containerStatuses"][0]
    assert onfailure["restartCount"] == 1
    assert onfailure["state"]["terminated"]["reason"] == "Completed"
    assert onfailure["lastState"]["terminated"]["exitCode"] == 1
    failed = api.pod(namespace, "never-fails")["status"]
    assert failed["containerStatuses"][0]["restartCount"] == 0
    assert failed["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert {c["type"]: c.get("reason") for c in failed["conditions"]}["Ready"] == "PodFailed"
    time.sleep(2)   # nothing restarts later either
    assert api.pod(namespace, "never-fails")["status"]["containerStatuses"][0][
        "restartCount"] == 0


def test_init_containers_run_in_order_before_the_app(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest(
        "init", kubelet.node, "cat /dev/shm/order; exec sleep 1000",
        init=["sleep 1; echo first >> /dev/shm/order", "echo second >> /dev/shm/order"]))
    seen: list[bool] = []   # whether a Pending pod said PodInitializing

    def initialized() -> bool:
        pod = api.pod(namespace, "init")
        app = (pod["status"].get("containerStatuses") or [{}])[0]
        if app.get("state", {}).get("waiting", {}).get("reason") == "PodInitializing":
            seen.append(pod["status"]["phase"] == "Pending")
        return bool(api.running(namespace, "init"))
    wait_for(initialized, timeout=60, what="the app running after its init containers")
    assert seen and all(seen)
    pod = api.pod(namespace, "init")
    inits = pod["status"]["initContainerStatuses"]
    assert [s["name"] for s in inits] == ["init0", "init1"]
    assert all(s["state"]["terminated"]["reason"] == "Completed" for s in inits)
    assert inits[0]["state"]["terminated"]["finishedAt"] <= inits[1]["state"]["terminated"][
        "startedAt"]
    assert wait_for(lambda: api.kubectl("logs", "-n", namespace, "init", "-c", "c").stdout
                    ) == "first\nsecond\n"
    # A failing init container of a Never pod fails the pod; the app never starts.
    api.create_pod(namespace, pod_manifest("badinit", kubelet.node, "echo never",
                                           restart_policy="Never", init=["exit 1"]))
    wait_for(lambda: api.phase(namespace, "badinit") == "Failed", what="pod Failed")
    app = api.pod(namespace, "badinit")["status"]["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_image_pull_policies(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest("absent", kubelet.node, "true",
                                           image="busybox:0.0-absent", pull_policy="Never"))
    api.create_pod(namespace, pod_manifest("unreachable", kubelet.node, "true",
                                           image="127.0.0.1:9/none:1", pull_policy="IfNotPresent"))

    def waiting(name: str) -> str:
        statuses = (api.pod(namespace, name) or {}).get("status", {}).get("containerStatuses")
        return (statuses or [{}])[0].get("state", {}).get("waiting", {}).get("reason", "")
    wait_for(lambda: waiting("absent") == "ErrImageNeverPull", what="ErrImageNeverPull")
    reasons = set()
    wait_for(lambda: reasons.add(waiting("unreachable")) or
             {"ErrImagePull", "ImagePullBackOff"} <= reasons, timeout=40, interval=0.2,
             what="ErrImagePull then ImagePullBackOff")
    assert api.phase(namespace, "unreachable") == "Pending"


def test_delete_terminates_gracefully_within_the_grace_period(api, kubelet, namespace):
    api.create_pod(namespace, pod_manifest(
        "graceful", kubelet.node, "trap 'echo got TERM; exit 0' TERM; echo up; "
        "while true; do sleep 0.1; done", grace=20))
    api.create_pod(namespace, pod_manifest("stubborn", kubelet.node,
                                           "trap '' TERM; while true; do sleep 0.1; done",
                                           grace=2))
    wait_for(lambda: api.running(namespace, "graceful") and api.running(namespace, "stubborn"))
    wait_for(lambda: "up" in api.kubectl("logs", "-n", namespace, "graceful").stdout)
    last: dict[str, dict] = {}
    gone = threading.Event()
    watching = threading.Event()

    def watch() -> None:
        w = api.client.watch(f"/api/v1/namespaces/{namespace}/pods", {"timeoutSeconds": "60"})
        deleted = set()
        for kind, obj in w:
            watching.set()   # the first event is an existing pod's ADDED
            if kind == "DELETED":
                deleted.add(obj["metadata"]["name"])
            else:
                last[obj["metadata"]["name"]] = obj
            if deleted >= {"graceful", "stubborn"}:
                gone.set()
                w.close()
                return
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert watching.wait(30), "the watch never started"
    api.delete_pod(namespace, "graceful")
    api.delete_pod(namespace, "stubborn")
    assert gone.wait(60)
    # The exit codes say how each ended: the graceful one on TERM (within its 20 s), the other
    # by KILL once its 2 s were up.
    graceful = last["graceful"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert graceful["exitCode"] == 0
    stubborn = last["stubborn"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert stubborn["exitCode"] == 137
    assert last["graceful"]["status"]["phase"] == "Succeeded"
    assert last["stubborn"]["status"]["phase"] == "Failed"
    assert json.dumps(last["graceful"]["metadata"]).count("deletionTimestamp") == 1
