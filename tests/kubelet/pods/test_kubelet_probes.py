"""Probes and lifecycle hooks through the real API server, pykubelet, shims and CNI: exec,
httpGet, tcpSocket and grpc probes with their transitions, liveness restarts, startup gating,
postStart and preStop hooks (exec, httpGet, sleep), activeDeadlineSeconds."""
from __future__ import annotations

import os
import ssl
import time
import urllib.request

import pytest

from kubelet_testlib import IMAGE, GrpcHealthServer, pod_manifest, wait_for

pytestmark = pytest.mark.root


def probe(kind: dict, period: int = 1, failure: int = 1, **extra) -> dict:
    return {**kind, "periodSeconds": period, "failureThreshold": failure, **extra}


def exec_probe(command: str, **extra) -> dict:
    return probe({"exec": {"command": ["sh", "-c", command]}}, **extra)


def with_container(manifest: dict, **fields) -> dict:
    manifest["spec"]["containers"][0].update(fields)
    return manifest


def probe_runs(api_server, kubelet, pod: str, kind: str, result: str) -> int:
    """How many times the kubelet ran the pod's `kind` probe with `result`, from its
    /metrics/probes (prober_probe_total)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    pki = os.path.join(api_server.data_dir, "pki")
    ctx.load_cert_chain(os.path.join(pki, "apiserver-kubelet-client.crt"),
                        os.path.join(pki, "apiserver-kubelet-client.key"))
    url = f"https://127.0.0.1:{kubelet.port}/metrics/probes"
    with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
        text = resp.read().decode()
    wanted = (f'pod="{pod}"', f'probe_type="{kind}"', f'result="{result}"')
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("prober_probe_total{") and all(w in line for w in wanted))


def conditions(pod: dict) -> dict:
    return {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}


def test_readiness_exec_probe_drives_ready(api, kubelet, namespace):
    # Ready while /tmp/ready exists: absent at first, made, then removed.
    api.create_pod(namespace, with_container(
        pod_manifest("ready", kubelet.node, "sleep 2; touch /tmp/ready; sleep 3; "
                     "rm /tmp/ready; exec sleep 1000"),
        readinessProbe=exec_probe("test -e /tmp/ready")))
    pod = wait_for(lambda: api.running(namespace, "ready"), what="pod Running")
    c = pod["status"]["containerStatuses"][0]
    assert not c["ready"] and c["started"]
    assert conditions(pod)["Ready"] == "False"
    pod = wait_for(lambda: (p := api.pod(namespace, "ready")) and
                   conditions(p).get("Ready") == "True" and p, what="Ready")
    assert pod["status"]["containerStatuses"][0]["ready"]
    assert conditions(pod)["ContainersReady"] == "True"
    wait_for(lambda: conditions(api.pod(namespace, "ready")).get("Ready") == "False",
             what="not Ready again")
    assert api.container_status(namespace, "ready")["restartCount"] == 0
    # A failure with no output says what ran, in the kubelet's runtime's words.
    assert {e["message"] for e in api.events(namespace, "ready") if e["reason"] == "Unhealthy"} \
        == {"Readiness probe failed: command 'sh -c test -e /tmp/ready' exited with 1: "}


def test_liveness_failure_restarts_the_container(api, kubelet, namespace):
    api.create_pod(namespace, with_container(
        pod_manifest("live", kubelet.node, "exec sleep 1000", grace=1),
        livenessProbe=exec_probe("test -e /tmp/never", failure=2)))
    status = wait_for(lambda: (s := api.container_status(namespace, "live")) and
                      s.get("restartCount", 0) >= 1 and s, timeout=60, what="a restart")
    assert status["lastState"]["terminated"]["exitCode"] == 137
    log = kubelet.log()
    assert "failed liveness probe, will be restarted" in log


def counted_probe(name: str, passes: str, **extra) -> dict:
    """An exec probe that numbers its runs (n = 0, 1, ...), passes when the shell test
    `passes` holds, and tells each result in the container's log through PID 1's stdout."""
    return exec_probe(f"n=$(cat /tmp/{name} 2>/dev/null || echo 0); "
                      f"echo $((n+1)) > /tmp/{name}; "
                      f"if {passes}; then echo {name}-pass > /proc/1/fd/1; "
                      f"else echo {name}-fail > /proc/1/fd/1; exit 1; fi", **extra)


def trailing(lines: list[str], line: str) -> int:
    """How many of the last lines are `line`."""
    count = 0
    for other in reversed(lines):
        if other != line:
            break
        count += 1
    return count


def test_thresholds_count_consecutive_results(api, kubelet, namespace):
    # Until /tmp/steady exists, readiness alternates pass/fail (successThreshold 2 is never
    # met) and liveness goes fail, fail, pass (failureThreshold 3 is never met); then
    # readiness always passes and liveness always fails.
    api.create_pod(namespace, with_container(
        pod_manifest("counts", kubelet.node,
                     "sleep 6; touch /tmp/steady; echo steady; exec sleep 1000", grace=1),
        readinessProbe=counted_probe("ready", "[ -e /tmp/steady ] || [ $((n % 2)) = 1 ]",
                                     successThreshold=2, failure=1),
        livenessProbe=counted_probe("live", "[ ! -e /tmp/steady ] && [ $((n % 3)) = 2 ]",
                                    failure=3, period=2)))
    pod = wait_for(lambda: api.running(namespace, "counts"), what="pod Running")
    log_file = f"{kubelet.pod_logs}/{namespace}_counts_{pod['metadata']['uid']}/c/0.log"

    def lines() -> list[str]:
        with open(log_file) as f:
            return [line.split(" ", 3)[3].rstrip("\n") for line in f]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the first Ready: after two passes in a row
        status = api.container_status(namespace, "counts")
        assert status.get("restartCount", 0) == 0, "restarted before it was ever Ready"
        if status.get("ready"):
            ready = [line for line in lines() if line.startswith("ready")]
            assert "ready-pass" in ready[:4]  # single passes came first and did not count
            assert any(a == b == "ready-pass" for a, b in zip(ready, ready[1:]))
            break
        time.sleep(0.1)
    else:
        raise AssertionError("never Ready")
    wait_for(lambda: api.container_status(namespace, "counts").get("restartCount", 0) >= 1,
             timeout=30, what="a restart")
    live = [line for line in lines() if line.startswith("live")]
    assert "live-pass" in live  # failures with a pass between did not add up
    # Killed at the first third failure in a row: not before, and no probe after it.
    assert trailing(live, "live-fail") == 3
    assert all(trailing(live[:i], "live-fail") < 3 for i in range(len(live)))


def test_http_and_tcp_probes_against_a_server_in_the_pod(api, api_server, kubelet,
                                                         namespace):
    command = ("mkdir -p /www && echo ok > /www/index.html && "
               "httpd -p 8080 -h /www && exec nc -ll -p 9090 -e true")
    api.create_pod(namespace, with_container(
        pod_manifest("web", kubelet.node, command),
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe=probe({"httpGet": {"path": "/index.html", "port": "http",
                                          "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}),
        livenessProbe=probe({"tcpSocket": {"port": 9090}}, failure=3)))
    pod = wait_for(lambda: (p := api.pod(namespace, "web")) and
                   conditions(p).get("Ready") == "True" and p, timeout=30, what="Ready")
    # Several liveness periods: the TCP probe keeps passing.
    wait_for(lambda: probe_runs(api_server, kubelet, "web", "Liveness", "successful") >= 4,
             what="four passed liveness probes")
    assert api.container_status(namespace, "web")["restartCount"] == 0
    assert pod["status"]["containerStatuses"][0]["ready"]


def test_http_probe_on_a_closed_port_keeps_the_pod_unready(api, api_server, kubelet,
                                                            namespace):
    api.create_pod(namespace, with_container(
        pod_manifest("closed", kubelet.node, "exec sleep 1000"),
        readinessProbe=probe({"httpGet": {"path": "/", "port": 8081}})))
    wait_for(lambda: api.running(namespace, "closed"), what="pod Running")
    wait_for(lambda: probe_runs(api_server, kubelet, "closed", "Readiness", "failed") >= 3,
             what="three failed readiness probes")
    pod = api.pod(namespace, "closed")
    assert conditions(pod)["Ready"] == "False"
    assert conditions(pod)["ContainersReady"] == "False"


def test_grpc_probes_against_a_health_server_in_the_pod_network(api, kubelet, namespace,
                                                                 tmp_path):
    # busybox has no gRPC: the server runs on the host, inside the pod's network namespace,
    # and answers on the pod's IP as a server in the container would.
    api.create_pod(namespace, with_container(
        pod_manifest("grpc", kubelet.node, "exec sleep 1000", grace=1),
        readinessProbe=probe({"grpc": {"port": 50051}}, successThreshold=2),
        livenessProbe=probe({"grpc": {"port": 50051, "service": "live"}}, failure=2,
                            initialDelaySeconds=10)))
    pod = wait_for(lambda: api.running(namespace, "grpc"), what="pod Running")
    ip = pod["status"]["podIP"]

    def unhealthy() -> list[str]:
        return [e["message"] for e in api.events(namespace, "grpc") if e["reason"] == "Unhealthy"]
    wait_for(lambda: f'Readiness probe failed: timeout: failed to connect service "{ip}:50051" '
             "within 1s: context deadline exceeded" in unhealthy(), what="the event of no server")
    with GrpcHealthServer(str(tmp_path), 50051, {"": "SERVING", "live": "SERVING"},
                          netns=kubelet.sandbox_netns(pod["metadata"]["uid"])) as server:
        wait_for(lambda: conditions(api.pod(namespace, "grpc")).get("Ready") == "True",
                 timeout=30, what="Ready")
        server.set({"": "NOT_SERVING", "live": "SERVING"})
        wait_for(lambda: conditions(api.pod(namespace, "grpc")).get("Ready") == "False",
                 what="not Ready")
        wait_for(lambda: 'Readiness probe failed: service unhealthy (responded with '
                 '"NOT_SERVING")' in unhealthy(), what="the NOT_SERVING event")
        server.set({"": "SERVING", "live": "SERVING"})
        wait_for(lambda: conditions(api.pod(namespace, "grpc")).get("Ready") == "True",
                 what="Ready again")
        assert api.container_status(namespace, "grpc")["restartCount"] == 0
        server.set({"": "SERVING"})  # the liveness probe's service is gone
        status = wait_for(lambda: (s := api.container_status(namespace, "grpc")) and
                          s.get("restartCount", 0) >= 1 and s, timeout=30, what="a restart")
    assert status["lastState"]["terminated"]["exitCode"] == 137
    wait_for(lambda: "Liveness probe failed: error: health rpc probe failed: rpc error: "
             "code = NotFound desc = unknown service 'live'" in unhealthy(),
             what="the liveness event")


def test_startup_probe_gates_liveness_and_readiness(api, kubelet, namespace):
    # Liveness would fail at once, but runs only after the startup probe passed (3 s in);
    # by then it passes too.
    api.create_pod(namespace, with_container(
        pod_manifest("slow", kubelet.node, "sleep 3; touch /tmp/up; exec sleep 1000"),
        startupProbe=exec_probe("test -e /tmp/up", failure=30),
        livenessProbe=exec_probe("test -e /tmp/up"),
        readinessProbe=exec_probe("test -e /tmp/up")))
    wait_for(lambda: api.running(namespace, "slow"), what="pod Running")
    c = api.container_status(namespace, "slow")
    assert not c["started"] and not c["ready"]
    c = wait_for(lambda: (s := api.container_status(namespace, "slow")) and s["ready"] and s,
                 timeout=30, what="ready")
    assert c["started"] and c["restartCount"] == 0


def test_post_start_and_pre_stop_hooks(api, kubelet, namespace):
    # postStart makes the file the container waits for; a liveness probe then fails, and the
    # kill runs preStop first, which writes into the container's log through PID 1's stdout.
    manifest = pod_manifest(
        "hooks", kubelet.node, "while [ ! -e /tmp/post ]; do sleep 0.1; done; echo saw-post; "
        "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
        restart_policy="Never", grace=10)
    api.create_pod(namespace, with_container(
        manifest, livenessProbe=exec_probe("test ! -e /tmp/post", initialDelaySeconds=1),
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "touch /tmp/post"]}},
                   "preStop": {"exec": {"command": ["sh", "-c",
                                                    "echo pre-stop-ran > /proc/1/fd/1"]}}}))
    pod = wait_for(lambda: (p := api.pod(namespace, "hooks")) and
                   p["status"].get("phase") == "Succeeded" and p, timeout=60, what="Succeeded")
    uid = pod["metadata"]["uid"]
    with open(f"{kubelet.pod_logs}/{namespace}_hooks_{uid}/c/0.log") as f:
        lines = [line.split(" ", 3)[3].rstrip("\n") for line in f]
    assert lines == ["saw-post", "pre-stop-ran", "got-term"]


def test_pre_stop_http_get_and_sleep_run_before_the_term(api, kubelet, namespace):
    # Each container's liveness probe fails once; the kill runs its preStop first (one container
    # after the other, as the kubelet's SyncPod does). The nap container's probe notes when it
    # failed, and its TERM trap prints how long ago that was.
    manifest = pod_manifest("prestop", kubelet.node,
                            "mkdir -p /www && echo bye > /www/bye && "
                            "httpd -f -vv -p 8080 -h /www & trap 'exit 0' TERM; "
                            "while :; do sleep 0.1; done", restart_policy="Never",
                            grace=10)
    with_container(manifest, livenessProbe=exec_probe("exit 1", initialDelaySeconds=1),
                   lifecycle={"preStop": {"httpGet": {"path": "/bye", "port": 8080}}})
    nap = dict(manifest["spec"]["containers"][0], name="nap", command=[
        "sh", "-c", "trap 'echo $(( $(date +%s) - $(cat /tmp/failed) )); exit 0' TERM; "
        "while :; do sleep 0.1; done"])
    nap["livenessProbe"] = exec_probe("[ -e /tmp/failed ] || date +%s > /tmp/failed; exit 1",
                                      initialDelaySeconds=1)
    nap["lifecycle"] = {"preStop": {"sleep": {"seconds": 3}}}
    manifest["spec"]["containers"].append(nap)
    api.create_pod(namespace, manifest)
    pod = wait_for(lambda: (p := api.pod(namespace, "prestop")) and
                   p["status"].get("phase") in ("Succeeded", "Failed") and p, timeout=60,
                   what="the pod ended")
    logs = f"{kubelet.pod_logs}/{namespace}_prestop_{pod['metadata']['uid']}"
    with open(f"{logs}/c/0.log") as f:
        assert any(line.endswith("url:/bye\n") for line in f)
    with open(f"{logs}/nap/0.log") as f:
        waited = int(f.read().split(" ", 3)[3])
    assert waited >= 2        # after the 3 s sleep, on a clock of whole seconds


def test_failing_post_start_hook_kills_the_container(api, kubelet, namespace):
    api.create_pod(namespace, with_container(
        pod_manifest("badhook", kubelet.node, "exec sleep 1000", grace=1),
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo no; exit 3"]}}}))
    waiting = wait_for(lambda: (s := api.container_status(namespace, "badhook")) and
                       s.get("state", {}).get("waiting", {}).get("reason") ==
                       "PostStartHookError" and s["state"]["waiting"], timeout=30,
                       what="PostStartHookError")
    assert waiting["message"] == "PostStartHook failed: no"
    # The container it ran in was killed; the next start waits in CrashLoopBackOff.
    status = wait_for(lambda: (s := api.container_status(namespace, "badhook")) and
                      "terminated" in s.get("lastState", {}) and s, timeout=30, what="killed")
    assert status["lastState"]["terminated"]["exitCode"] == 137


def test_active_deadline_fails_the_pod(api, kubelet, namespace):
    manifest = pod_manifest("deadline", kubelet.node, "exec sleep 1000", grace=1)
    manifest["spec"]["activeDeadlineSeconds"] = 3
    api.create_pod(namespace, manifest)
    wait_for(lambda: api.running(namespace, "deadline"), what="pod Running")
    pod = wait_for(lambda: (p := api.pod(namespace, "deadline")) and
                   p["status"].get("phase") == "Failed" and p, timeout=30, what="Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["message"] == \
        "Pod was active on the node longer than the specified deadline"
    wait_for(lambda: "terminated" in api.container_status(namespace, "deadline")["state"],
             timeout=30, what="container stopped")


def test_events_tell_the_story_in_kubectl_describe(api, kubelet, namespace):
    api.create_pod(namespace, with_container(
        pod_manifest("story", kubelet.node, "exec sleep 1000", grace=1),
        livenessProbe=exec_probe("echo not alive; exit 1", failure=2)))

    def events() -> list[dict]:
        return api.events(namespace, "story")
    wait_for(lambda: {"Pulled", "Created", "Started", "Unhealthy", "Killing"} <=
             {e["reason"] for e in events()}, timeout=60, what="the events")
    by_reason = {e["reason"]: e for e in events()}
    assert by_reason["Pulled"]["message"] == \
        f'Container image "{IMAGE}" already present on machine'      # imagePullPolicy Never
    unhealthy = by_reason["Unhealthy"]
    assert unhealthy["type"] == "Warning"
    assert unhealthy["message"] == "Liveness probe failed: not alive"
    assert unhealthy["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert unhealthy["source"] == {"component": "kubelet", "host": kubelet.node}
    assert by_reason["Killing"]["message"] == \
        "Container c failed liveness probe, will be restarted"
    # Repeats are counted, not repeated.
    wait_for(lambda: any(e["reason"] == "Unhealthy" and e.get("count", 1) > 1
                         for e in events()), timeout=30, what="a counted repeat")
    describe = api.kubectl("describe", "pod", "-n", namespace, "story")
    assert describe.returncode == 0, describe.stderr
    assert "Liveness probe failed: not alive" in describe.stdout
    assert "Started container c" in describe.stdout
