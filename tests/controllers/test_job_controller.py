"""The Job and TTL-after-finished controllers against the real pyapiserver, no kubelet: the test
plays the kubelet by writing the pods' phase through pods/status. Pods carry the tracking
finalizer and the controller reference; completions and parallelism, counting each finished pod
once (finalizer removed), SuccessCriteriaMet then Complete, backoffLimit with failed pods and
with restarts under OnFailure, activeDeadlineSeconds, Indexed mode (index annotation, label,
hostname, JOB_COMPLETION_INDEX, completedIndexes), ttlSecondsAfterFinished."""
from __future__ import annotations

import time

import pytest

from controllers.context import Options
from controllers.workloads.job import INDEX_KEY, TRACKING_FINALIZER, format_indexes, parse_indexes
from controllers_testlib import delete_pods, running, wait_for
from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"


@pytest.fixture
def controllers(client):
    with running(client, ["job", "ttl-after-finished", "garbagecollector"],
                 Options(extra={"job_pod_failure_backoff": 0.0})):
        yield


@pytest.fixture
def ns(client, namespace, controllers):
    yield namespace
    delete_pods(client, namespace)


def make_job(client, ns: str, name: str, **spec) -> dict:
    restart = spec.pop("restartPolicy", "Never")
    return client.create(JOBS.format(ns=ns), {
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": restart, "containers": [
            {"name": "c", "image": "busybox"}]}}, **spec}})


def job_of(client, ns: str, name: str) -> dict:
    return client.get(f"{JOBS.format(ns=ns)}/{name}")


def live_pods(client, ns: str) -> list[dict]:
    return sorted((p for p in client.get(PODS.format(ns=ns))["items"]
                   if p["status"].get("phase") in (None, "Pending", "Running") and
                   not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: p["metadata"]["name"])


def finish(client, ns: str, pod: dict, phase: str) -> None:
    client.patch(f"{PODS.format(ns=ns)}/{pod['metadata']['name']}/status",
                 {"status": {"phase": phase}})


def conditions(job: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}


def test_completions_and_parallelism(client, ns):
    make_job(client, ns, "work", completions=3, parallelism=2)
    pods = wait_for(lambda: len(live_pods(client, ns)) == 2 and live_pods(client, ns),
                    what="two pods")
    for pod in pods:
        assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("Job", "work", True)
        assert pod["metadata"]["generateName"] == "work-"
    job = job_of(client, ns, "work")
    assert job["status"]["startTime"]
    wait_for(lambda: job_of(client, ns, "work")["status"].get("active") == 2, what="active 2")
    finish(client, ns, pods[0], "Succeeded")
    wait_for(lambda: job_of(client, ns, "work")["status"].get("succeeded") == 1,
             what="one success counted")
    done = client.get(f"{PODS.format(ns=ns)}/{pods[0]['metadata']['name']}")
    wait_for(lambda: TRACKING_FINALIZER not in (client.get(
        f"{PODS.format(ns=ns)}/{pods[0]['metadata']['name']}")["metadata"].get("finalizers")
        or []), what="finalizer removed")
    assert done["status"]["phase"] == "Succeeded"
    # one more pod for the remaining two completions, never more than parallelism
    wait_for(lambda: len(live_pods(client, ns)) == 2, what="a replacement")
    for pod in live_pods(client, ns):
        finish(client, ns, pod, "Succeeded")
    job = wait_for(lambda: "Complete" in conditions(job_of(client, ns, "work")) and
                   job_of(client, ns, "work"), what="Complete")
    conds = conditions(job)
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["message"] == "Reached expected number of succeeded pods"
    assert job["status"]["succeeded"] == 3 and "active" not in job["status"]
    assert job["status"]["completionTime"]
    assert job["status"]["uncountedTerminatedPods"] == {}
    assert live_pods(client, ns) == []


class RefusingClient(ApiClient):
    """Our REST client, with the API server's 409 for the first removal of a pod's tracking
    finalizer (a uid precondition that failed, or a conflict past the server's retries)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refused: list[str] = []

    def patch(self, path: str, patch: object, patch_type: str = "merge", retries: int = 0):
        if not self.refused and "$deleteFromPrimitiveList/finalizers" in str(patch):
            self.refused.append(path)
            raise ApiError(409, "Conflict", "refused by the test")
        return super().patch(path, patch, patch_type, retries)


def test_a_refused_finalizer_removal_does_not_count_the_pod_twice(client, namespace, server):
    """kube's job controller keeps a pod's uid in uncountedTerminatedPods until its finalizer
    is off; counting it at once, and again when a later sync found it still holding the
    finalizer, made one failure two."""
    refusing = RefusingClient(kubeconfig.load(server.kubeconfig), "job-tests")
    try:
        with running(refusing, ["job"], Options(extra={"job_pod_failure_backoff": 0.0})):
            make_job(client, namespace, "once", backoffLimit=3)
            pod = wait_for(lambda: live_pods(client, namespace), what="the first pod")[0]
            finish(client, namespace, pod, "Failed")
            wait_for(lambda: refusing.refused, what="the refused removal")
            path = f"{PODS.format(ns=namespace)}/{pod['metadata']['name']}"
            wait_for(lambda: TRACKING_FINALIZER not in (
                client.get(path)["metadata"].get("finalizers") or []),
                what="the finalizer removed on a later try")
            second = wait_for(lambda: live_pods(client, namespace), what="the second pod")[0]
            finish(client, namespace, second, "Succeeded")
            job = wait_for(lambda: "Complete" in conditions(job_of(client, namespace, "once"))
                           and job_of(client, namespace, "once"), what="Complete")
        assert (job["status"]["failed"], job["status"]["succeeded"]) == (1, 1), job["status"]
    finally:
        refusing.close()
        delete_pods(client, namespace)


class LateJobs(ApiClient):
    """Our REST client whose watch of Jobs hands each event over half a second late: the
    controller's Job informer falls behind its pod informer, as a loaded one can."""

    def watch(self, path: str, query: dict | None = None):
        watch = super().watch(path, query)
        return _Late(watch) if path.endswith("/jobs") else watch


class _Late:
    def __init__(self, watch) -> None:
        self.watch = watch

    def __iter__(self):
        for event in self.watch:
            time.sleep(0.5)
            yield event

    def close(self) -> None:
        self.watch.close()


@pytest.mark.parametrize("mode", ["NonIndexed", "Indexed"])
def test_a_status_behind_its_pods_starts_no_extra_pod(client, namespace, server, mode):
    """A succeeded pod whose finalizer the controller removed can reach its informer before
    the status that counted it. A sync in between must not take the completion (the index) as
    still to do: the pod it would start is deleted once the status arrives, and counted
    failed."""
    late = LateJobs(kubeconfig.load(server.kubeconfig), "job-tests")
    count = 2 if mode == "Indexed" else 1
    try:
        with running(late, ["job"], Options(extra={"job_pod_failure_backoff": 0.0})):
            make_job(client, namespace, "late", completions=count, parallelism=count,
                     completionMode=mode)
            pods = wait_for(lambda: len(live_pods(client, namespace)) == count and
                            live_pods(client, namespace), what="the pods")
            for pod in pods:
                finish(client, namespace, pod, "Succeeded")
            job = wait_for(lambda: "Complete" in conditions(job_of(client, namespace, "late"))
                           and job_of(client, namespace, "late"), timeout=60, what="Complete")
            names = sorted(p["metadata"]["name"]
                           for p in client.get(PODS.format(ns=namespace))["items"])
        assert names == sorted(p["metadata"]["name"] for p in pods)
        assert (job["status"].get("failed", 0), job["status"]["succeeded"]) == (0, count), \
            job["status"]
    finally:
        late.close()
        delete_pods(client, namespace)


def test_backoff_limit_exceeded(client, ns):
    make_job(client, ns, "flaky", backoffLimit=1)
    for n in range(2):
        pod = wait_for(lambda: live_pods(client, ns), what=f"pod {n}")[0]
        finish(client, ns, pod, "Failed")
        wait_for(lambda: job_of(client, ns, "flaky")["status"].get("failed") == n + 1,
                 what=f"{n + 1} failures")
    job = wait_for(lambda: "Failed" in conditions(job_of(client, ns, "flaky")) and
                   job_of(client, ns, "flaky"), what="Failed")
    conds = conditions(job)
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["Failed"]["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 2 and "completionTime" not in job["status"]
    assert live_pods(client, ns) == []


def test_restarts_count_under_on_failure(client, ns):
    make_job(client, ns, "restarts", backoffLimit=2, restartPolicy="OnFailure")
    pod = wait_for(lambda: live_pods(client, ns), what="pod")[0]
    client.patch(f"{PODS.format(ns=ns)}/{pod['metadata']['name']}/status", {"status": {
        "phase": "Running", "containerStatuses": [{"name": "c", "image": "busybox",
                                                   "imageID": "", "ready": False,
                                                   "restartCount": 2, "state": {}}]}})
    wait_for(lambda: "FailureTarget" in conditions(job_of(client, ns, "restarts")),
             what="FailureTarget")
    # the job's pods are deleted; the kubelet's part is to end the running one
    name = pod["metadata"]["name"]
    wait_for(lambda: not live_pods(client, ns), what="the pod deleted")
    try:
        client.delete(f"{PODS.format(ns=ns)}/{name}", {"gracePeriodSeconds": 0})
    except ApiError as e:
        assert e.code == 404
    job = wait_for(lambda: "Failed" in conditions(job_of(client, ns, "restarts")) and
                   job_of(client, ns, "restarts"), what="Failed")
    assert conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"


def test_active_deadline(client, ns):
    make_job(client, ns, "slow", activeDeadlineSeconds=1)
    job = wait_for(lambda: "Failed" in conditions(job_of(client, ns, "slow")) and
                   job_of(client, ns, "slow"), what="Failed")
    assert conditions(job)["Failed"]["reason"] == "DeadlineExceeded"
    assert conditions(job)["Failed"]["message"] == \
        "Job was active longer than specified deadline"
    # Its pod was started and ended at the deadline: by the events, since under load it can
    # live too briefly for a poll of the pods to see it (a rehearsal's did).
    wait_for(lambda: any(e["reason"] == "SuccessfulCreate" and
                         e["involvedObject"]["name"] == "slow"
                         for e in client.get(f"/api/v1/namespaces/{ns}/events")["items"]),
             what="the pod's creation event")
    wait_for(lambda: live_pods(client, ns) == [], what="the pod ended")


def test_indexed(client, ns):
    make_job(client, ns, "idx", completions=3, parallelism=3, completionMode="Indexed")
    pods = wait_for(lambda: len(live_pods(client, ns)) == 3 and live_pods(client, ns),
                    what="three pods")
    by_index = {int(p["metadata"]["annotations"][INDEX_KEY]): p for p in pods}
    assert sorted(by_index) == [0, 1, 2]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"][INDEX_KEY] == str(index)
        assert pod["metadata"]["name"].startswith(f"idx-{index}-")
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX_KEY}']"}}}]
    finish(client, ns, by_index[1], "Succeeded")
    wait_for(lambda: job_of(client, ns, "idx")["status"].get("completedIndexes") == "1",
             what="completedIndexes 1")
    finish(client, ns, by_index[0], "Failed")
    replacement = wait_for(lambda: [p for p in live_pods(client, ns)
                                    if p["metadata"]["annotations"][INDEX_KEY] == "0"],
                           what="index 0 again")[0]
    finish(client, ns, replacement, "Succeeded")
    finish(client, ns, by_index[2], "Succeeded")
    job = wait_for(lambda: "Complete" in conditions(job_of(client, ns, "idx")) and
                   job_of(client, ns, "idx"), what="Complete")
    assert job["status"]["completedIndexes"] == "0-2"
    assert job["status"]["succeeded"] == 3 and job["status"]["failed"] == 1


def test_ttl_after_finished(client, ns):
    job = make_job(client, ns, "brief", ttlSecondsAfterFinished=0)
    pod = wait_for(lambda: live_pods(client, ns), what="pod")[0]
    finish(client, ns, pod, "Succeeded")

    def gone() -> bool:
        try:
            found = job_of(client, ns, "brief")
        except ApiError as e:
            return e.code == 404
        return found["metadata"]["uid"] != job["metadata"]["uid"]

    wait_for(gone, what="the finished job deleted")


def test_index_ranges():
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert parse_indexes("") == set()


def test_official_python_client(client, ns, server):
    """The kubernetes client creates a Job and reads its typed status: counts, conditions,
    times as datetimes, the empty uncountedTerminatedPods."""
    from kubernetes import client as k8s
    api = server.client()
    try:
        batch = k8s.BatchV1Api(api)
        batch.create_namespaced_job(ns, k8s.V1Job(
            metadata=k8s.V1ObjectMeta(name="py"),
            spec=k8s.V1JobSpec(completions=1, template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(restart_policy="Never", containers=[
                    k8s.V1Container(name="c", image="busybox")])))))
        pod = wait_for(lambda: live_pods(client, ns), what="a pod")[0]
        finish(client, ns, pod, "Succeeded")
        job = wait_for(lambda: (batch.read_namespaced_job_status("py", ns).status.conditions
                                or []) and any(c.type == "Complete" for c in
                                               batch.read_namespaced_job_status("py", ns)
                                               .status.conditions) and
                       batch.read_namespaced_job_status("py", ns), what="Complete")
        assert job.status.succeeded == 1 and job.status.active is None
        assert job.status.completion_time.tzinfo is not None
        assert job.status.uncounted_terminated_pods.succeeded is None
        assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]
        assert job.status.ready == 0 and job.status.terminating == 0
    finally:
        api.close()


def terminated(client, ns: str, pod: dict, code: int, conditions: list | None = None) -> None:
    client.patch(f"{PODS.format(ns=ns)}/{pod['metadata']['name']}/status", {"status": {
        "phase": "Failed", "conditions": conditions or [],
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False,
                               "restartCount": 0,
                               "state": {"terminated": {"exitCode": code}}}]}})


def test_pod_failure_policy(client, ns):
    make_job(client, ns, "policy", backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                              "values": [42]}}]})
    pod = wait_for(lambda: live_pods(client, ns), what="pod")[0]
    terminated(client, ns, pod, 1, [{"type": "DisruptionTarget", "status": "True"}])
    second = wait_for(lambda: [p for p in live_pods(client, ns)
                               if p["metadata"]["uid"] != pod["metadata"]["uid"]],
                      what="a replacement")[0]
    assert "failed" not in job_of(client, ns, "policy")["status"]
    terminated(client, ns, second, 42)
    job = wait_for(lambda: "Failed" in conditions(job_of(client, ns, "policy")) and
                   job_of(client, ns, "policy"), what="Failed")
    failed = conditions(job)["Failed"]
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (f"Container c for pod {ns}/{second['metadata']['name']} "
                                 "failed with exit code 42 matching FailJob rule at index 1")
    assert job["status"]["failed"] == 1


def test_suspend_and_resume(client, ns):
    make_job(client, ns, "nap", parallelism=2, completions=4)
    wait_for(lambda: len(live_pods(client, ns)) == 2, what="two pods")
    client.patch(f"{JOBS.format(ns=ns)}/nap", {"spec": {"suspend": True}})
    job = wait_for(lambda: "Suspended" in conditions(job_of(client, ns, "nap")) and
                   job_of(client, ns, "nap"), what="Suspended")
    cond = conditions(job)["Suspended"]
    assert (cond["status"], cond["reason"], cond["message"]) == \
        ("True", "JobSuspended", "Job suspended")
    wait_for(lambda: not live_pods(client, ns), what="the pods deleted")
    client.patch(f"{JOBS.format(ns=ns)}/nap", {"spec": {"suspend": False}})
    job = wait_for(lambda: conditions(job_of(client, ns, "nap"))["Suspended"]["status"] ==
                   "False" and job_of(client, ns, "nap"), what="resumed")
    assert conditions(job)["Suspended"]["reason"] == "JobResumed"
    wait_for(lambda: len(live_pods(client, ns)) == 2, what="two pods again")


@pytest.mark.parametrize("policy", ["Background", "Orphan"])
def test_pods_of_a_deleted_job_let_go(client, ns, policy):
    make_job(client, ns, "gone", parallelism=2, completions=2)
    wait_for(lambda: len(live_pods(client, ns)) == 2, what="two pods")
    client.delete(f"{JOBS.format(ns=ns)}/gone", {"propagationPolicy": policy})

    def finalizers() -> list:
        return [f for p in client.get(PODS.format(ns=ns))["items"]
                for f in p["metadata"].get("finalizers") or []]

    wait_for(lambda: not finalizers(), what="the tracking finalizers removed")
    if policy == "Background":
        wait_for(lambda: not client.get(PODS.format(ns=ns))["items"], what="the pods gone")


def index_pods(client, ns: str, index: int) -> list[dict]:
    return [p for p in live_pods(client, ns)
            if p["metadata"]["annotations"][INDEX_KEY] == str(index)]


def test_backoff_limit_per_index(client, ns):
    make_job(client, ns, "per", completions=3, parallelism=3, completionMode="Indexed",
             backoffLimitPerIndex=1)
    wait_for(lambda: len(live_pods(client, ns)) == 3, what="three pods")
    first = index_pods(client, ns, 0)[0]
    assert first["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == \
        "0"
    finish(client, ns, first, "Failed")
    retry = wait_for(lambda: index_pods(client, ns, 0), what="index 0 again")[0]
    assert retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == \
        "1"
    finish(client, ns, retry, "Failed")
    wait_for(lambda: job_of(client, ns, "per")["status"].get("failedIndexes") == "0",
             what="index 0 failed")
    for index in (1, 2):
        finish(client, ns, index_pods(client, ns, index)[0], "Succeeded")
    job = wait_for(lambda: "Failed" in conditions(job_of(client, ns, "per")) and
                   job_of(client, ns, "per"), what="Failed")
    assert conditions(job)["Failed"]["reason"] == "FailedIndexes"
    assert conditions(job)["Failed"]["message"] == "Job has failed indexes"
    assert job["status"]["completedIndexes"] == "1-2" and job["status"]["failed"] == 2


def test_max_failed_indexes(client, ns):
    make_job(client, ns, "maxed", completions=3, parallelism=3, completionMode="Indexed",
             backoffLimitPerIndex=0, maxFailedIndexes=0)
    wait_for(lambda: len(live_pods(client, ns)) == 3, what="three pods")
    finish(client, ns, index_pods(client, ns, 1)[0], "Failed")
    job = wait_for(lambda: "FailureTarget" in conditions(job_of(client, ns, "maxed")) and
                   job_of(client, ns, "maxed"), what="FailureTarget")
    assert conditions(job)["FailureTarget"]["reason"] == "MaxFailedIndexesExceeded"
    # the other indexes' pods, deleted for the job's end, may fail their indexes too
    assert 1 in parse_indexes(job["status"]["failedIndexes"])


def test_success_policy(client, ns):
    make_job(client, ns, "leader", completions=3, parallelism=3, completionMode="Indexed",
             successPolicy={"rules": [{"succeededIndexes": "0"}]})
    wait_for(lambda: len(live_pods(client, ns)) == 3, what="three pods")
    finish(client, ns, index_pods(client, ns, 0)[0], "Succeeded")
    job = wait_for(lambda: "Complete" in conditions(job_of(client, ns, "leader")) and
                   job_of(client, ns, "leader"), what="Complete")
    for kind in ("SuccessCriteriaMet", "Complete"):
        assert conditions(job)[kind]["reason"] == "SuccessPolicy"
        assert conditions(job)[kind]["message"] == "Matched rules at index 0"
    assert job["status"]["completedIndexes"] == "0" and live_pods(client, ns) == []
