"""DaemonSets, StatefulSets, Jobs and CronJobs end to end: real kubectl, pyapiserver,
pycontroller-manager (as a process: daemonset, statefulset, job, cronjob, ttl-after-finished,
the local PersistentVolume provisioner and the garbage collector) and real pykubelets.

- A DaemonSet on the two nodes a label selects runs one Ready pod per node, each bound by the
  node-name affinity the controller writes; a NoExecute taint on one node takes its pod away.
- A StatefulSet of 3 with a volumeClaimTemplate comes up in order (a pod appears only after
  its predecessor was Ready), each pod with its own bound claim; a deleted pod comes back
  under its name and finds the file it wrote on its claim; scaling to 1 keeps the claims.
- An Indexed Job of 5 completions, 2 at a time, whose pods each fail once (a marker file per
  index on a hostPath) and succeed on retry; `kubectl wait --for=condition=complete`.
- A CronJob every minute, run at once by the manager's --cronjob-clock-offset (60 s ahead, so
  a schedule time always lies between its creation and "now").
- Bad selectors, templates and schedules refused by the API server, nothing created."""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading

import pytest

from kubelet_testlib import IMAGE, running_controller_manager, wait_for

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
CONTROLLERS = ("daemonset,statefulset,job,cronjob,ttl-after-finished,local-provisioner,"
               "garbagecollector")


@pytest.fixture(scope="module")
def pv_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("local-pv"))


@pytest.fixture(scope="module")
def controller_manager(api_server, tmp_path_factory, pv_root):
    flags = (f"--controllers={CONTROLLERS}", f"--local-pv-root={pv_root}",
             "--cronjob-clock-offset=60s", "--job-pod-failure-backoff=1s")
    with running_controller_manager(api_server, str(tmp_path_factory.mktemp("pycm")),
                                    *flags) as log_path:
        yield log_path


def kubectl(api, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = api.kubectl(*args, timeout=timeout)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def apply(api, namespace: str, manifest: dict, ok: bool = True) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(manifest, f)
        f.flush()
        if ok:
            return kubectl(api, "apply", "-n", namespace, "-f", f.name)
        return api.kubectl("apply", "-n", namespace, "-f", f.name)


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def container(command: list[str], **extra) -> dict:
    return {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": command,
            **extra}


def drain_namespace(api, namespace: str) -> None:
    """Deletes the namespace's workloads and waits for their pods to be gone."""
    for kind in ("daemonsets", "statefulsets", "cronjobs", "jobs"):
        api.kubectl("delete", kind, "--all", "-n", namespace, "--wait=false",
                    "--cascade=background")
    api.kubectl("delete", "pods", "--all", "-n", namespace, "--wait=false")
    wait_for(lambda: not api.pods(namespace), timeout=120, what="the namespace's pods gone")


def test_daemonset_on_two_nodes(api, start_kubelet, namespace, controller_manager):
    kubelets = [start_kubelet(), start_kubelet()]
    label = f"pool-{namespace}"
    for k in kubelets:
        wait_for(lambda: api.get(f"/api/v1/nodes/{k.node}"), what=f"node {k.node}")
        kubectl(api, "label", "node", k.node, f"{label}=yes")
    apply(api, namespace, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
                     "nodeSelector": {label: "yes"}, "terminationGracePeriodSeconds": 5,
                     "containers": [container(COMMAND)]}}}})
    try:
        def ready_by_node() -> dict[str, dict]:
            return {p["spec"].get("nodeName"): p for p in live(api.pods(namespace))
                    if is_ready(p)}

        pods = wait_for(lambda: len(ready_by_node()) == 2 and ready_by_node(), timeout=90,
                        what="a ready daemon pod per node")
        assert sorted(pods) == sorted(k.node for k in kubelets)
        for node, pod in pods.items():
            terms = pod["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                               "values": [node]}]}]
            keys = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
            assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
            assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
            assert pod["metadata"]["labels"]["controller-revision-hash"]
        status = wait_for(lambda: (api.get(f"/apis/apps/v1/namespaces/{namespace}/daemonsets/"
                                           "agent")["status"].get("numberAvailable") == 2) and
                          api.get(f"/apis/apps/v1/namespaces/{namespace}/daemonsets/agent")[
                              "status"], what="numberAvailable 2")
        assert status["desiredNumberScheduled"] == 2 and status["currentNumberScheduled"] == 2
        assert status["numberReady"] == 2 and status["updatedNumberScheduled"] == 2
        assert status["numberMisscheduled"] == 0
        revisions = api.get(f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions")
        assert [r["revision"] for r in revisions["items"]] == [1]
        out = kubectl(api, "rollout", "status", "-n", namespace, "daemonset/agent",
                      "--timeout=60s", timeout=70).stdout
        assert "successfully rolled out" in out

        # A NoExecute taint the daemon does not tolerate takes its pod off that node.
        kubectl(api, "taint", "node", kubelets[1].node, "dedicated=other:NoExecute")
        wait_for(lambda: [p["spec"].get("nodeName") for p in live(api.pods(namespace))] ==
                 [kubelets[0].node], timeout=60, what="only the untainted node's pod")
        wait_for(lambda: api.get(f"/apis/apps/v1/namespaces/{namespace}/daemonsets/agent")[
            "status"]["desiredNumberScheduled"] == 1, what="desired 1")
    finally:
        drain_namespace(api, namespace)


def test_statefulset_in_order_with_stable_names_and_claims(api, kubelet, namespace,
                                                           controller_manager):
    write_id = ["sh", "-c", "[ -e /data/id ] || echo $(hostname) > /data/id; "
                            "trap 'exit 0' TERM; while true; do sleep 1; done"]
    path = f"/api/v1/namespaces/{namespace}/pods"
    listed = api.client.get(path)
    watch = api.client.watch(path, {"resourceVersion": listed["metadata"]["resourceVersion"]})
    ready_seen: set[str] = set()
    problems: list[str] = []

    def follow() -> None:
        try:
            for kind, pod in watch:
                name = pod["metadata"]["name"]
                ordinal = int(name.rsplit("-", 1)[1])
                if kind == "ADDED" and ordinal > 0 and f"web-{ordinal - 1}" not in ready_seen:
                    problems.append(f"{name} created before web-{ordinal - 1} was Ready")
                if is_ready(pod):
                    ready_seen.add(name)
        except Exception:  # closed at the end
            pass

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    apply(api, namespace, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "serviceName": "web",
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
                     "terminationGracePeriodSeconds": 5,
                     "containers": [container(write_id, volumeMounts=[
                         {"name": "data", "mountPath": "/data"}])]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Mi"}}}}]}})
    try:
        kubectl(api, "rollout", "status", "-n", namespace, "statefulset/web", "--timeout=120s",
                timeout=130)
        pods = {p["metadata"]["name"]: p for p in live(api.pods(namespace))}
        assert sorted(pods) == ["web-0", "web-1", "web-2"]
        assert not problems, problems
        for name, pod in pods.items():
            assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == name
            assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "web"
        claims = api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")["items"]
        assert sorted((c["metadata"]["name"], c["status"]["phase"]) for c in claims) == [
            (f"data-web-{i}", "Bound") for i in range(3)]
        table = kubectl(api, "get", "pvc", "-n", namespace).stdout
        assert re.search(r"data-web-0\s+Bound\s+pvc-\S+\s+1Mi\s+RWO\s", table), table
        table = kubectl(api, "get", "pv").stdout
        assert re.search(rf"1Mi\s+RWO\s+Delete\s+Bound\s+{namespace}/data-web-1\s", table), \
            table
        sts = api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/web")
        assert sts["status"]["readyReplicas"] == 3
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]

        def claim_file(ordinal: int) -> str:
            claim = api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/"
                            f"data-web-{ordinal}")
            volume = api.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
            with open(os.path.join(volume["spec"]["hostPath"]["path"], "id")) as f:
                return f.read().strip()

        assert wait_for(lambda: claim_file(1) == "web-1", what="web-1's file on its claim")
        old_uid = pods["web-1"]["metadata"]["uid"]
        kubectl(api, "delete", "pod", "-n", namespace, "web-1", "--wait=false")
        wait_for(lambda: any(p["metadata"]["name"] == "web-1" and
                             p["metadata"]["uid"] != old_uid and is_ready(p)
                             for p in api.pods(namespace)), timeout=90,
                 what="web-1 back and Ready")
        assert claim_file(1) == "web-1"

        kubectl(api, "scale", "-n", namespace, "statefulset/web", "--replicas=1")
        wait_for(lambda: [p["metadata"]["name"] for p in api.pods(namespace)] == ["web-0"],
                 timeout=90, what="only web-0 left")
        claims = api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")["items"]
        assert len(claims) == 3
    finally:
        watch.close()
        thread.join(10)
        drain_namespace(api, namespace)
        api.kubectl("delete", "pvc", "--all", "-n", namespace, "--wait=false")
        wait_for(lambda: not [v for v in api.get("/api/v1/persistentvolumes")["items"]
                              if (v["spec"].get("claimRef") or {}).get("namespace") ==
                              namespace], timeout=60, what="the volumes deleted")


def test_indexed_job_retries_each_pod_once(api, kubelet, namespace, controller_manager,
                                           tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    script = ("if [ -e /m/$JOB_COMPLETION_INDEX ]; then exit 0; fi; "
              "touch /m/$JOB_COMPLETION_INDEX; exit 1")
    apply(api, namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work"},
        "spec": {"completions": 5, "parallelism": 2, "completionMode": "Indexed",
                 "backoffLimit": 6,
                 "template": {"spec": {
                     "restartPolicy": "Never",
                     "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
                     "volumes": [{"name": "m", "hostPath": {"path": str(markers)}}],
                     "containers": [container(["sh", "-c", script], volumeMounts=[
                         {"name": "m", "mountPath": "/m"}])]}}}})
    try:
        waited = api.kubectl("wait", "-n", namespace, "--for=condition=complete", "job/work",
                             "--timeout=180s", timeout=190)
        job = api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/work")
        index = "batch.kubernetes.io/job-completion-index"
        seen = [(p["metadata"]["name"], p["status"].get("phase"),
                 (p["metadata"].get("annotations") or {}).get(index),
                 p["metadata"].get("creationTimestamp"), p["metadata"].get("finalizers"),
                 p["metadata"].get("deletionTimestamp"),
                 [c.get("state") for c in p["status"].get("containerStatuses") or []])
                for p in api.pods(namespace)]
        assert waited.returncode == 0, (waited.stderr, job["status"], seen)
        assert job["status"]["succeeded"] == 5 and job["status"]["failed"] == 5, \
            (job["status"], seen)
        assert job["status"]["completedIndexes"] == "0-4"
        assert sorted(os.listdir(markers)) == ["0", "1", "2", "3", "4"]
        pods = api.pods(namespace)
        assert len(pods) == 10
        assert all("batch.kubernetes.io/job-tracking" not in
                   (p["metadata"].get("finalizers") or []) for p in pods)
        out = kubectl(api, "get", "job", "work", "-n", namespace).stdout
        assert "5/5" in out
    finally:
        drain_namespace(api, namespace)


def test_cronjob_runs_on_the_shifted_clock(api, kubelet, namespace, controller_manager):
    apply(api, namespace, {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
                "containers": [container(["true"])]}}}}}})
    try:
        cj = wait_for(lambda: (api.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/tick")
                               .get("status") or {}).get("lastSuccessfulTime") and
                      api.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/tick"),
                      timeout=90, what="a successful run")
        jobs = api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
        assert jobs, "no job"
        from kubeapi import timefmt
        minutes = int(timefmt.parse(cj["status"]["lastScheduleTime"])) // 60
        assert f"tick-{minutes}" in {j["metadata"]["name"] for j in jobs}
        assert jobs[0]["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        wait_for(lambda: not (api.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/tick")
                              .get("status") or {}).get("active"), what="no active job")
    finally:
        drain_namespace(api, namespace)


@pytest.mark.parametrize("manifest, message", [
    ({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "bad"},
      "spec": {"selector": {"matchLabels": {"app": "x"}},
               "template": {"metadata": {"labels": {"app": "y"}},
                            "spec": {"containers": [container(COMMAND)]}}}},
     "`selector` does not match template `labels`"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "bad"},
      "spec": {"selector": {"matchLabels": {"app": "x"}}, "serviceName": "bad",
               "template": {"metadata": {"labels": {"app": "y"}},
                            "spec": {"containers": [container(COMMAND)]}}}},
     "`selector` does not match template `labels`"),
    ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
      "spec": {"template": {"spec": {"restartPolicy": "Always",
                                     "containers": [container(COMMAND)]}}}},
     'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
     '"OnFailure", "Never"'),
    ({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bad"},
      "spec": {"schedule": "every minute", "jobTemplate": {"spec": {"template": {"spec": {
          "restartPolicy": "Never", "containers": [container(COMMAND)]}}}}}},
     'spec.schedule: Invalid value: "every minute"'),
], ids=["daemonset-selector", "statefulset-selector", "job-restart-policy", "cronjob-schedule"])
def test_bad_workloads_refused(api, namespace, manifest, message):
    proc = apply(api, namespace, manifest, ok=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    kind = manifest["kind"].lower() + "s"
    group = "apps/v1" if manifest["apiVersion"] == "apps/v1" else "batch/v1"
    assert api.get(f"/apis/{group}/namespaces/{namespace}/{kind}")["items"] == []
