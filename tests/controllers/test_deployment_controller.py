"""The Deployment controller (with the ReplicaSet controller) against the real pyapiserver, no
kubelet: the tests play the kubelet's part by marking pods Running and Ready through
pods/status while they poll. ReplicaSets per template hash with kube's names, labels and
annotations; rolling updates within maxSurge/maxUnavailable checked at every step; Recreate
never overlapping; kubectl rollout history/undo/pause/resume/restart/status and scale; the
Progressing and Available conditions, the progress deadline, revisionHistoryLimit; and the
surge/unavailable arithmetic as pure functions."""
from __future__ import annotations

import re
import subprocess

import pytest

from controllers.workloads import deployment_util as du
from controllers_testlib import delete_pods, running, wait_for
from kubeapi.status import ApiError
from testlib.pyapiserver import kubectl_path

DEPLOYS = "/apis/apps/v1/namespaces/{ns}/deployments"
RSS = "/apis/apps/v1/namespaces/{ns}/replicasets"
PODS = "/api/v1/namespaces/{ns}/pods"
HASH = re.compile(r"^[bcdfghjklmnpqrstvwxz2456789]{1,10}$")


@pytest.fixture
def controllers(client):
    with running(client, ["deployment", "replicaset"]):
        yield


@pytest.fixture
def controllers_and_gc(client):
    """With the garbage collector, which orphans dependents (`--cascade=orphan`)."""
    with running(client, ["deployment", "replicaset", "garbagecollector"]):
        yield


@pytest.fixture
def ns(client, namespace):
    yield namespace
    delete_pods(client, namespace)


def kubectl(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([kubectl_path(), "--kubeconfig", server.kubeconfig, *args],
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc


def deployment(client, ns: str, name: str, replicas: int = 3, image: str = "busybox:1",
               **spec) -> dict:
    return client.create(DEPLOYS.format(ns=ns), {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 **spec}})


def live_pods(client, ns: str) -> list[dict]:
    return [p for p in client.get(PODS.format(ns=ns))["items"]
            if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def kubelet_step(client, ns: str, ready: bool = True, image: str = "") -> list[dict]:
    """What a kubelet would do next: every live pod that is not yet ready becomes Running and
    Ready (only those of `image` when given). The pods as they are now."""
    pods = live_pods(client, ns)
    for pod in pods:
        if image and pod["spec"]["containers"][0]["image"] != image:
            continue
        if ready and not is_ready(pod):
            try:
                client.patch(f"{PODS.format(ns=ns)}/{pod['metadata']['name']}/status", {
                    "status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True"}]}})
            except ApiError as e:
                if e.code != 404:
                    raise
    return pods


def get(client, ns: str, name: str) -> dict:
    return client.get(f"{DEPLOYS.format(ns=ns)}/{name}")


def rss_of(client, ns: str) -> list[dict]:
    return client.get(RSS.format(ns=ns))["items"]


def cond(d: dict, type_: str) -> dict:
    return next((c for c in (d.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), {})


def rolled_out(client, ns: str, name: str, replicas: int):
    """Polls like a kubelet until the Deployment is complete."""
    def check():
        kubelet_step(client, ns)
        d = get(client, ns, name)
        s = d.get("status") or {}
        return s.get("observedGeneration") == d["metadata"]["generation"] and \
            s.get("updatedReplicas", 0) == replicas and s.get("replicas", 0) == replicas and \
            s.get("availableReplicas", 0) == replicas and \
            cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable" and d
    return wait_for(check, timeout=60, what=f"{name} rolled out")


def test_first_rollout_names_labels_annotations_and_conditions(client, ns, controllers):
    deployment(client, ns, "web")
    d = rolled_out(client, ns, "web", 3)
    [rs] = rss_of(client, ns)
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert HASH.match(hash_) and rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash_
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    annotations = rs["metadata"]["annotations"]
    assert annotations[du.REVISION] == "1"
    assert annotations[du.DESIRED_REPLICAS] == "3"
    assert annotations[du.MAX_REPLICAS] == "4"  # 3 + 25 % rounded up
    assert d["metadata"]["annotations"][du.REVISION] == "1"
    for pod in live_pods(client, ns):
        assert pod["metadata"]["labels"]["pod-template-hash"] == hash_
        assert pod["metadata"]["name"].startswith(f"web-{hash_}-")
    assert cond(d, "Available")["status"] == "True"
    assert cond(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert cond(d, "Available")["message"] == "Deployment has minimum availability."
    assert cond(d, "Progressing")["message"] == \
        f'ReplicaSet "web-{hash_}" has successfully progressed.'
    s = d["status"]
    assert (s["replicas"], s["updatedReplicas"], s["readyReplicas"], s["availableReplicas"]) \
        == (3, 3, 3, 3) and "unavailableReplicas" not in s
    assert s["terminatingReplicas"] == 0
    out = kubectl(client_server(client), "rollout", "status", "deployment/web", "-n", ns,
                  "--timeout=20s").stdout
    assert 'deployment "web" successfully rolled out' in out


def client_server(client):
    return client._server  # set by the fixture below


@pytest.fixture(autouse=True)
def _server_on_client(client, server):
    client._server = server


def test_rolling_update_keeps_capacity_and_surge(client, ns, server, controllers):
    deployment(client, ns, "roll", 3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    rolled_out(client, ns, "roll", 3)
    kubectl(server, "set", "image", "deployment/roll", "c=busybox:2", "-n", ns)
    seen_new = set()

    def step():
        pods = kubelet_step(client, ns)
        ready = [p for p in pods if is_ready(p)]
        assert len(ready) >= 3 or len(seen_new) == 0, \
            f"only {len(ready)} ready pods during the rollout"
        assert len(pods) <= 4, f"{len(pods)} pods: more than replicas + maxSurge"
        seen_new.update(p["metadata"]["name"] for p in pods
                        if p["spec"]["containers"][0]["image"] == "busybox:2")
        d = get(client, ns, "roll")
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
            d["status"].get("updatedReplicas") == 3 and \
            d["status"].get("availableReplicas") == 3 and d["status"].get("replicas") == 3 \
            and cond(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
    wait_for(step, timeout=60, what="rolled to busybox:2")
    assert all(p["spec"]["containers"][0]["image"] == "busybox:2"
               for p in live_pods(client, ns))
    rss = {rs["metadata"]["annotations"][du.REVISION]: rs for rs in rss_of(client, ns)}
    assert sorted(rss) == ["1", "2"]
    assert rss["1"]["spec"]["replicas"] == 0 and rss["2"]["spec"]["replicas"] == 3
    assert get(client, ns, "roll")["metadata"]["annotations"][du.REVISION] == "2"
    events = [e["message"] for e in client.get(f"/api/v1/namespaces/{ns}/events")["items"]
              if e["reason"] == "ScalingReplicaSet"]
    assert any(m.startswith("Scaled down replica set roll-") for m in events)

    # kubectl rollout history and undo: back to the first template, as revision 3.
    history = kubectl(server, "rollout", "history", "deployment/roll", "-n", ns).stdout
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M)
    kubectl(server, "rollout", "undo", "deployment/roll", "-n", ns)
    wait_for(lambda: kubelet_step(client, ns) is not None and all(
        p["spec"]["containers"][0]["image"] == "busybox:1" for p in live_pods(client, ns))
        and len(live_pods(client, ns)) == 3 and
        get(client, ns, "roll")["status"].get("updatedReplicas") == 3,
        timeout=60, what="undone to busybox:1")
    first = next(rs for rs in rss_of(client, ns)
                 if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1")
    assert first["metadata"]["annotations"][du.REVISION] == "3"
    assert first["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert len(rss_of(client, ns)) == 2


def test_recreate_never_overlaps(client, ns, server, controllers):
    deployment(client, ns, "rec", 2, strategy={"type": "Recreate"})
    rolled_out(client, ns, "rec", 2)
    kubectl(server, "set", "image", "deployment/rec", "c=busybox:2", "-n", ns)

    def step():
        pods = client.get(PODS.format(ns=ns))["items"]  # terminating ones too
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        assert len(images) <= 1, f"old and new pods together: {images}"
        kubelet_step(client, ns)
        d = get(client, ns, "rec")
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
            images == {"busybox:2"} and d["status"].get("availableReplicas") == 2 and \
            d["status"].get("updatedReplicas") == 2
    wait_for(step, timeout=60, what="recreated")


def test_scale_pause_resume_and_restart(client, ns, server, controllers):
    deployment(client, ns, "sc", 2)
    rolled_out(client, ns, "sc", 2)
    kubectl(server, "scale", "deployment/sc", "--replicas=0", "-n", ns)
    wait_for(lambda: not live_pods(client, ns) and
             get(client, ns, "sc")["status"].get("replicas", 0) == 0, what="scaled to 0")
    [rs] = rss_of(client, ns)
    assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "0"
    kubectl(server, "scale", "deployment/sc", "--replicas=5", "-n", ns)
    rolled_out(client, ns, "sc", 5)
    assert len(rss_of(client, ns)) == 1

    kubectl(server, "rollout", "pause", "deployment/sc", "-n", ns)
    wait_for(lambda: cond(get(client, ns, "sc"), "Progressing").get("reason") ==
             "DeploymentPaused", what="paused condition")
    assert cond(get(client, ns, "sc"), "Progressing")["status"] == "Unknown"
    kubectl(server, "set", "image", "deployment/sc", "c=busybox:2", "-n", ns)
    wait_for(lambda: get(client, ns, "sc")["status"].get("observedGeneration") ==
             get(client, ns, "sc")["metadata"]["generation"], what="paused change observed")
    assert len(rss_of(client, ns)) == 1  # nothing rolls while paused
    kubectl(server, "rollout", "resume", "deployment/sc", "-n", ns)
    rolled_out(client, ns, "sc", 5)
    assert len(rss_of(client, ns)) == 2

    kubectl(server, "rollout", "restart", "deployment/sc", "-n", ns)
    rolled_out(client, ns, "sc", 5)
    assert len(rss_of(client, ns)) == 3
    revisions = sorted(int(rs["metadata"]["annotations"][du.REVISION])
                       for rs in rss_of(client, ns))
    assert revisions == [1, 2, 3]


def test_progress_deadline_exceeded(client, ns, server, controllers):
    deployment(client, ns, "stuck", 1, progressDeadlineSeconds=2)
    d = wait_for(lambda: cond(get(client, ns, "stuck"), "Progressing").get("reason") ==
                 "ProgressDeadlineExceeded" and get(client, ns, "stuck"), timeout=30,
                 what="deadline exceeded")
    c = cond(d, "Progressing")
    assert c["status"] == "False" and c["message"].endswith("has timed out progressing.")
    assert cond(d, "Available")["status"] == "False"
    assert cond(d, "Available")["reason"] == "MinimumReplicasUnavailable"
    proc = kubectl(server, "rollout", "status", "deployment/stuck", "-n", ns,
                   "--timeout=20s", check=False)
    assert proc.returncode != 0 and "exceeded its progress deadline" in proc.stderr


def test_revision_history_limit(client, ns, server, controllers):
    deployment(client, ns, "hist", 1, revisionHistoryLimit=1)
    rolled_out(client, ns, "hist", 1)
    for tag in ("2", "3"):
        kubectl(server, "set", "image", "deployment/hist", f"c=busybox:{tag}", "-n", ns)
        rolled_out(client, ns, "hist", 1)
    wait_for(lambda: len(rss_of(client, ns)) == 2, what="history cut to one old ReplicaSet")
    assert sorted(rs["metadata"]["annotations"][du.REVISION] for rs in rss_of(client, ns)) \
        == ["2", "3"]


def _d(replicas, surge, unavailable, strategy="RollingUpdate"):
    return {"metadata": {}, "spec": {"replicas": replicas, "strategy": {
        "type": strategy, "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}


def test_surge_rounds_up_and_unavailable_down():
    assert du.fenceposts(_d(10, "25%", "25%")) == (3, 2)
    assert du.fenceposts(_d(3, "25%", "25%")) == (1, 0)
    assert du.fenceposts(_d(3, 0, 0)) == (0, 1)        # never both zero
    assert du.fenceposts(_d(5, 2, "50%")) == (2, 2)
    assert du.max_unavailable(_d(2, 0, 5)) == 2         # at most the replicas
    assert du.max_unavailable(_d(0, 1, 1)) == 0
    assert du.max_surge(_d(4, 2, 1, "Recreate")) == 0
    with pytest.raises(ValueError):
        du.scaled_value("25", 4, True)


def test_new_replicas_and_proportions():
    d = _d(10, 3, 2)
    new = {"metadata": {}, "spec": {"replicas": 0}}
    old = {"metadata": {}, "spec": {"replicas": 10}}
    assert du.new_rs_new_replicas(d, [old, new], new) == 3
    new["spec"]["replicas"] = 3
    assert du.new_rs_new_replicas(d, [old, new], new) == 3   # at replicas + surge
    # Scaling 10 -> 20 during a rollout: each ReplicaSet grows by its share of max-replicas.
    rs = {"metadata": {"annotations": {du.MAX_REPLICAS: "13"}}, "spec": {"replicas": 8}}
    d20 = _d(20, 3, 2)
    assert du.proportion(rs, d20, 10, 0) == 6   # round(8 * 23 / 13) - 8 = 14 - 8
    assert du.proportion(rs, d20, 10, 8) == 2   # capped by what is left


def test_hash_is_stable_and_changes_with_collision_count():
    t = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    h = du.compute_hash(t, None)
    assert HASH.match(h) and h == du.compute_hash(dict(t), None)
    assert du.compute_hash(t, 1) != h
    assert du.safe_encode("0123456789") == "456789bcdf"


def test_kubectl_reads_what_the_controllers_wrote(client, ns, server, controllers):
    """describe finds the new and old ReplicaSets and the events; history shows a revision's
    template and change-cause; get rs prints the counts."""
    deployment(client, ns, "show", 2)
    rolled_out(client, ns, "show", 2)
    kubectl(server, "annotate", "deployment/show", "-n", ns,
            "kubernetes.io/change-cause=second image")
    kubectl(server, "set", "image", "deployment/show", "c=busybox:2", "-n", ns)
    rolled_out(client, ns, "show", 2)
    [new] = [rs for rs in rss_of(client, ns) if rs["spec"]["replicas"] == 2]
    [old] = [rs for rs in rss_of(client, ns) if rs["spec"]["replicas"] == 0]
    out = kubectl(server, "describe", "deployment", "show", "-n", ns).stdout
    assert re.search(rf"NewReplicaSet:\s+{new['metadata']['name']} \(2/2 replicas created\)",
                     out)
    assert re.search(rf"OldReplicaSets:\s+{old['metadata']['name']} \(0/0 replicas created\)",
                     out)
    assert "ScalingReplicaSet" in out and "deployment-controller" in out
    assert re.search(r"Progressing\s+True\s+NewReplicaSetAvailable", out)
    history = kubectl(server, "rollout", "history", "deployment/show", "-n", ns).stdout
    assert re.search(r"^2\s+second image$", history, re.M)
    one = kubectl(server, "rollout", "history", "deployment/show", "-n", ns,
                  "--revision=1").stdout
    assert "busybox:1" in one and "pod-template-hash=" in one
    rs_table = kubectl(server, "get", "rs", "-n", ns).stdout
    assert re.search(rf"^{new['metadata']['name']}\s+2\s+2\s+2\s", rs_table, re.M)


def test_scaling_mid_rollout_is_proportional(client, ns, server, controllers):
    """10 replicas, maxSurge 3, maxUnavailable 2, and new pods that never become ready: the
    rollout stops at 8 old + 5 new. Scaled to 20, the 10 more (23 allowed - 13) are shared by
    each ReplicaSet's part of max-replicas (13): old 8 -> 14, new 5 -> 9, as kube's."""
    deployment(client, ns, "prop", 10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}})
    rolled_out(client, ns, "prop", 10)
    kubectl(server, "set", "image", "deployment/prop", "c=busybox:2", "-n", ns)

    def sizes():
        kubelet_step(client, ns, image="busybox:1")
        return sorted((rs["spec"]["template"]["spec"]["containers"][0]["image"],
                       rs["spec"]["replicas"]) for rs in rss_of(client, ns))
    wait_for(lambda: sizes() == [("busybox:1", 8), ("busybox:2", 5)], timeout=30,
             what="the rollout stuck at 8 + 5")
    kubectl(server, "scale", "deployment/prop", "--replicas=20", "-n", ns)
    wait_for(lambda: sizes() == [("busybox:1", 14), ("busybox:2", 9)], timeout=30,
             what="8 + 5 scaled to 14 + 9")
    for rs in rss_of(client, ns):
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "20"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "23"


def test_adopts_an_orphan_replicaset_and_releases_one_that_stops_matching(
        client, ns, server, controllers_and_gc):
    """A ReplicaSet of the Deployment's template left by `delete --cascade=orphan` is adopted
    back by a new Deployment (no new ReplicaSet, same pods); one relabelled is let go."""
    deployment(client, ns, "ad", 2)
    rolled_out(client, ns, "ad", 2)
    [rs] = rss_of(client, ns)
    pods = {p["metadata"]["name"] for p in live_pods(client, ns)}
    kubectl(server, "delete", "deployment/ad", "-n", ns, "--cascade=orphan")
    wait_for(lambda: not rss_of(client, ns)[0]["metadata"].get("ownerReferences"),
             what="ReplicaSet orphaned")
    d = deployment(client, ns, "ad", 2)
    wait_for(lambda: (rss_of(client, ns)[0]["metadata"].get("ownerReferences") or [{}])[0]
             .get("uid") == d["metadata"]["uid"], what="ReplicaSet adopted")
    rolled_out(client, ns, "ad", 2)
    assert [r["metadata"]["name"] for r in rss_of(client, ns)] == [rs["metadata"]["name"]]
    assert {p["metadata"]["name"] for p in live_pods(client, ns)} == pods
    # A ReplicaSet the selector no longer matches is released, and the Deployment makes
    # another for its template.
    client.patch(f"{RSS.format(ns=ns)}/{rs['metadata']['name']}",
                 {"metadata": {"labels": {"app": "elsewhere"}}})
    wait_for(lambda: not client.get(f"{RSS.format(ns=ns)}/{rs['metadata']['name']}")[
        "metadata"].get("ownerReferences"), what="ReplicaSet released")


def test_hash_collision_bumps_collision_count(client, ns, server, controllers):
    """A ReplicaSet not ours already has the name the template hashes to: collisionCount
    goes to 1 and the ReplicaSet is named by the hash with it, as kube's."""
    d = deployment(client, ns, "col", 1, paused=True)
    name = f"col-{du.compute_hash(d['spec']['template'], None)}"
    client.create(RSS.format(ns=ns), {
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "squatter"}},
                 "template": {"metadata": {"labels": {"app": "squatter"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    client.patch(f"{DEPLOYS.format(ns=ns)}/col", {"spec": {"paused": False}})
    d = rolled_out(client, ns, "col", 1)
    assert d["status"]["collisionCount"] == 1
    mine = [rs["metadata"]["name"] for rs in rss_of(client, ns) if rs["metadata"]["name"] != name]
    assert mine == [f"col-{du.compute_hash(d['spec']['template'], 1)}"]


def test_official_python_client_reads_and_scales(client, ns, server, controllers):
    """The kubernetes client: create, status with typed conditions, the scale subresource,
    ReplicaSets with their owner, and a watch that ends when the rollout is complete."""
    from kubernetes import client as k8s
    from kubernetes import watch
    api = server.client()
    try:
        apps = k8s.AppsV1Api(api)
        apps.create_namespaced_deployment(ns, k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="py"),
            spec=k8s.V1DeploymentSpec(
                replicas=2, selector=k8s.V1LabelSelector(match_labels={"app": "py"}),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels={"app": "py"}),
                    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c",
                                                                   image="busybox")])))))
        rolled_out(client, ns, "py", 2)
        d = apps.read_namespaced_deployment_status("py", ns)
        assert d.status.available_replicas == 2 and d.status.observed_generation == 1
        progressing = next(c for c in d.status.conditions if c.type == "Progressing")
        assert progressing.reason == "NewReplicaSetAvailable"
        assert progressing.last_update_time.tzinfo is not None
        apps.patch_namespaced_deployment_scale("py", ns, {"spec": {"replicas": 3}})
        w = watch.Watch()
        for event in w.stream(apps.list_namespaced_deployment, ns, timeout_seconds=30,
                              field_selector="metadata.name=py"):
            kubelet_step(client, ns)
            s = event["object"].status
            if s.available_replicas == 3 and s.updated_replicas == 3 and \
                    s.observed_generation == event["object"].metadata.generation:
                w.stop()
        [rs] = apps.list_namespaced_replica_set(ns).items
        assert rs.spec.replicas == 3 and rs.metadata.owner_references[0].name == "py"
        assert rs.status.ready_replicas == 3
    finally:
        api.close()
