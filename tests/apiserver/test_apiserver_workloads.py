"""The workload APIs (issue 22) against kube-apiserver's behaviour, with the real kubectl and
the official Python client: apps/v1, batch/v1, policy/v1 objects with their defaults, kube's
validation messages, scale and status subresources, Table columns, OpenAPI for explain,
delete propagation finalizers, and pods/eviction with PodDisruptionBudgets (kubectl drain)."""
from __future__ import annotations

import http.client
import json
import os
import ssl
import uuid

import pytest
import yaml
from kubeapi import timefmt

from apiserver_testlib import ADMIN_TOKEN, wait_for

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                     "command": ["sleep", "3600"]}]}}
SELECTOR = {"matchLabels": {"app": "web"}}


def body(kind: str, name: str = "w", **spec: object) -> dict:
    """A valid object of each kind; keyword arguments replace parts of its spec."""
    group = {"Job": "batch/v1", "CronJob": "batch/v1",
             "PodDisruptionBudget": "policy/v1"}.get(kind, "apps/v1")
    base: dict = {
        "Deployment": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
        "ReplicaSet": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
        "DaemonSet": {"selector": SELECTOR, "template": TEMPLATE},
        "StatefulSet": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE,
                        "serviceName": "web"},
        "Job": {"template": {"spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}},
        "CronJob": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
            "spec": {**TEMPLATE["spec"], "restartPolicy": "OnFailure"}}}}},
        "PodDisruptionBudget": {"minAvailable": 1, "selector": SELECTOR},
    }[kind]
    return {"apiVersion": group, "kind": kind, "metadata": {"name": name},
            "spec": {**json.loads(json.dumps(base)), **spec}}


PLURALS = {"Deployment": "deployments", "ReplicaSet": "replicasets",
           "DaemonSet": "daemonsets", "StatefulSet": "statefulsets", "Job": "jobs",
           "CronJob": "cronjobs", "PodDisruptionBudget": "poddisruptionbudgets"}


def url(kind: str, ns: str, name: str = "", sub: str = "") -> str:
    group = body(kind)["apiVersion"]
    path = f"/apis/{group}/namespaces/{ns}/{PLURALS[kind]}"
    return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def call(server, method: str, path: str, payload: object = None,
         content_type: str = "application/json"):
    """A raw request with the admin token: (status, parsed body)."""
    ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    try:
        data = None if payload is None else json.dumps(payload).encode()
        conn.request(method, path, body=data, headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": content_type,
            "Accept": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def apps(server):
    from kubernetes import client
    api = server.client()
    yield client.AppsV1Api(api)
    api.close()


@pytest.fixture
def batch(server):
    from kubernetes import client
    api = server.client()
    yield client.BatchV1Api(api)
    api.close()


@pytest.fixture
def policy(server):
    from kubernetes import client
    api = server.client()
    yield client.PolicyV1Api(api)
    api.close()


# kubectl

def test_kubectl_create_scale_set_image_deployment(server, namespace):
    out = server.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=3",
                         "-n", namespace).stdout
    assert out.strip() == "deployment.apps/web created"
    dep = json.loads(server.kubectl("get", "deploy", "web", "-n", namespace, "-o",
                                    "json").stdout)
    spec = dep["spec"]
    assert spec["replicas"] == 3 and spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert dep["metadata"]["generation"] == 1

    assert server.kubectl("scale", "deploy/web", "--replicas=5", "-n",
                          namespace).stdout.strip() == "deployment.apps/web scaled"
    server.kubectl("set", "image", "deploy/web", "busybox=busybox:1.37", "-n", namespace)
    dep = json.loads(server.kubectl("get", "deploy", "web", "-n", namespace, "-o",
                                    "json").stdout)
    assert dep["spec"]["replicas"] == 5
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert dep["metadata"]["generation"] == 3

    lines = server.kubectl("get", "deploy", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["web", "0/5", "0", "0"]
    wide = server.kubectl("get", "deploy", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[5:] == ["busybox", "busybox:1.37", "app=web"]


def test_kubectl_create_job_and_cronjob(server, namespace):
    server.kubectl("create", "job", "once", "--image=busybox", "-n", namespace, "--", "true")
    job = json.loads(server.kubectl("get", "job", "once", "-n", namespace, "-o",
                                    "json").stdout)
    uid = job["metadata"]["uid"]
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "once",
        "controller-uid": uid, "job-name": "once"}
    lines = server.kubectl("get", "job", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert lines[1].split()[:3] == ["once", "Running", "0/1"]

    server.kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *",
                   "-n", namespace, "--", "date")
    cj = json.loads(server.kubectl("get", "cj", "tick", "-n", namespace, "-o", "json").stdout)
    assert cj["spec"]["concurrencyPolicy"] == "Allow" and cj["spec"]["suspend"] is False
    assert (cj["spec"]["successfulJobsHistoryLimit"], cj["spec"]["failedJobsHistoryLimit"]) == \
        (3, 1)
    lines = server.kubectl("get", "cronjobs", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST",
                                "SCHEDULE", "AGE"]
    assert lines[1].split()[:8] == ["tick", "*/1", "*", "*", "*", "*", "<none>", "False"]

    bad = server.kubectl("create", "cronjob", "bad", "--image=busybox", "--schedule=bad",
                         "-n", namespace, check=False)
    assert bad.returncode == 1
    assert 'CronJob.batch "bad" is invalid: spec.schedule: Invalid value: "bad": expected ' \
        'exactly 5 fields, found 1: [bad]' in bad.stderr
    assert "bad" not in server.kubectl("get", "cj", "-n", namespace, "-o", "name").stdout


def test_get_all_kinds_with_their_columns(server, namespace):
    manifest = "\n---\n".join(yaml.safe_dump(body(kind, kind.lower()))
                              for kind in PLURALS)
    server.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    out = server.kubectl("get", "deploy,rs,ds,sts,job,cj,pdb", "-n", namespace).stdout
    headers = [line.split() for line in out.splitlines() if line.startswith("NAME")]
    assert headers == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
         "AGE"],
        ["NAME", "READY", "AGE"],
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]]
    assert "poddisruptionbudget.policy/poddisruptionbudget   1               N/A" in out
    every = server.kubectl("get", "all", "-n", namespace, "-o", "name").stdout.split()
    for name in ("deployment.apps/deployment", "replicaset.apps/replicaset",
                 "daemonset.apps/daemonset", "statefulset.apps/statefulset", "job.batch/job",
                 "cronjob.batch/cronjob"):
        assert name in every


def test_explain_workloads(server):
    out = server.kubectl("explain", "deployment.spec.strategy").stdout
    assert "GROUP:      apps" in out and "rollingUpdate\t<RollingUpdateDeployment>" in out
    out = server.kubectl("explain", "cronjob.spec.schedule").stdout
    assert "KIND:       CronJob" in out and "FIELD: schedule <string>" in out
    out = server.kubectl("explain", "pdb.spec").stdout
    assert "minAvailable\t<IntOrString>" in out


def test_server_side_apply_and_strategic_merge_on_templates(server, namespace):
    manifest = yaml.safe_dump(body("Deployment", "ssa"))
    out = server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    assert "deployment.apps/ssa serverside-applied" in out.stdout
    # a second container through strategic merge: the first one, keyed by name, stays
    server.kubectl("patch", "deploy", "ssa", "-n", namespace, "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "side",
                                                         "image": "busybox:1.37"}]}}}}))
    dep = json.loads(server.kubectl("get", "deploy", "ssa", "-n", namespace, "-o", "json",
                                    "--show-managed-fields").stdout)
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["c", "side"]
    managers = {e["manager"] for e in dep["metadata"]["managedFields"]}
    assert "kubectl" in managers


# the Python client

def test_python_client_create_list_watch_patch_each_kind(server, namespace, apps, batch,
                                                         policy):
    from kubernetes import watch
    made = {
        "Deployment": apps.create_namespaced_deployment,
        "ReplicaSet": apps.create_namespaced_replica_set,
        "DaemonSet": apps.create_namespaced_daemon_set,
        "StatefulSet": apps.create_namespaced_stateful_set,
        "Job": batch.create_namespaced_job,
        "CronJob": batch.create_namespaced_cron_job,
        "PodDisruptionBudget": policy.create_namespaced_pod_disruption_budget,
    }
    for kind, create in made.items():
        obj = create(namespace, body(kind, "p"))
        assert obj.metadata.generation == 1 and obj.metadata.uid
    assert apps.list_namespaced_deployment(namespace).items[0].spec.replicas == 2
    assert apps.read_namespaced_daemon_set("p", namespace).spec.update_strategy.type == \
        "RollingUpdate"
    sts = apps.read_namespaced_stateful_set("p", namespace)
    assert sts.spec.pod_management_policy == "OrderedReady" and sts.status.replicas == 0
    assert batch.read_namespaced_job("p", namespace).spec.backoff_limit == 6
    assert policy.read_namespaced_pod_disruption_budget("p", namespace).spec.min_available == 1
    revision = apps.create_namespaced_controller_revision(namespace, {
        "metadata": {"name": "p-1"}, "data": {"spec": {}}, "revision": 1})
    assert revision.revision == 1

    stream = watch.Watch().stream(apps.list_namespaced_replica_set, namespace,
                                  timeout_seconds=5)
    first = next(stream)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "p")

    patched = apps.patch_namespaced_replica_set("p", namespace, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4 and patched.metadata.generation == 2
    # status writes do not count as generations
    status = apps.patch_namespaced_replica_set_status(
        "p", namespace, {"status": {"replicas": 4, "readyReplicas": 1}})
    assert status.status.ready_replicas == 1 and status.metadata.generation == 2
    # the main resource ignores status
    again = apps.patch_namespaced_replica_set("p", namespace, {"status": {"replicas": 9}})
    assert again.status.replicas == 4


def test_scale_subresource(server, namespace, apps):
    apps.create_namespaced_stateful_set(namespace, body("StatefulSet", "db"))
    scale = apps.read_namespaced_stateful_set_scale("db", namespace)
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == \
        (2, 0, "app=web")
    scaled = apps.patch_namespaced_stateful_set_scale("db", namespace, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert apps.read_namespaced_stateful_set("db", namespace).spec.replicas == 4
    code, answer = call(server, "PUT", url("StatefulSet", namespace, "db", "scale"),
                        {"kind": "Scale", "apiVersion": "autoscaling/v1",
                         "metadata": {"name": "db"}, "spec": {"replicas": -1}})
    assert code == 422
    assert answer["message"] == ('Scale.autoscaling "db" is invalid: spec.replicas: Invalid '
                                 'value: -1: must be greater than or equal to 0')
    code, answer = call(server, "PUT", url("StatefulSet", namespace, "db", "scale"),
                        {"kind": "Scale", "metadata": {"name": "db", "resourceVersion": "1"},
                         "spec": {"replicas": 1}})
    assert code == 409
    code, _ = call(server, "GET", url("DaemonSet", namespace, "db", "scale"))
    assert code == 404


def test_discovery_names_the_subresource_kinds(server):
    code, core = call(server, "GET", "/api/v1")
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"], eviction["verbs"]) == \
        ("policy", "v1", "Eviction", ["create"])
    code, apps = call(server, "GET", "/apis/apps/v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["kind"]) == ("autoscaling", "Scale")
    deploy = next(r for r in apps["resources"] if r["name"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]


# bad input: kube's messages, nothing created

BAD = [
    ("Deployment", {"selector": {"matchLabels": {"app": "other"}}},
     'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
     '{"app":"web"}: `selector` does not match template `labels`'),
    ("Deployment", {"selector": None},
     'Deployment.apps "bad" is invalid: spec.selector: Required value'),
    ("Deployment", {"replicas": -1},
     'Deployment.apps "bad" is invalid: spec.replicas: Invalid value: -1: must be greater '
     'than or equal to 0'),
    ("Deployment", {"strategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": 0}}},
     'Deployment.apps "bad" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid '
     'value: 0: may not be 0 when `maxSurge` is 0'),
    ("ReplicaSet", {"template": {**TEMPLATE, "spec": {**TEMPLATE["spec"],
                                                      "restartPolicy": "Never"}}},
     'ReplicaSet.apps "bad" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
     '"Never": supported values: "Always"'),
    ("DaemonSet", {"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     'DaemonSet.apps "bad" is invalid: spec.selector.matchExpressions[0].values: Required '
     'value: must be specified when `operator` is \'In\' or \'NotIn\''),
    ("Deployment", {"strategy": {"type": "Blue"}},
     'Deployment.apps "bad" is invalid: spec.strategy: Unsupported value: {"Type":"Blue",'
     '"RollingUpdate":null}: supported values: "Recreate", "RollingUpdate"'),
    ("DaemonSet", {"selector": None},
     'DaemonSet.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
     '{"app":"web"}: `selector` does not match template `labels`'),
    ("DaemonSet", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 1, "maxSurge": "10%"}}},
     'DaemonSet.apps "bad" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid '
     'value: "10%": may not be set when maxUnavailable is non-zero'),
    ("StatefulSet", {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     'StatefulSet.apps "bad" is invalid: spec.updateStrategy.rollingUpdate: Invalid value: '
     '{"Partition":1,"MaxUnavailable":null}: only allowed for updateStrategy \'RollingUpdate\''),
    ("StatefulSet", {"podManagementPolicy": "Sometimes"},
     'StatefulSet.apps "bad" is invalid: spec.podManagementPolicy: Invalid value: '
     '"Sometimes": must be \'OrderedReady\' or \'Parallel\''),
    ("Job", {"template": {"spec": TEMPLATE["spec"]}},
     'Job.batch "bad" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
     '"Always": supported values: "OnFailure", "Never"'),
    ("Job", {"parallelism": -2},
     'Job.batch "bad" is invalid: spec.parallelism: Invalid value: -2: must be greater than '
     'or equal to 0'),
    ("CronJob", {"schedule": "61 * * * *"},
     'CronJob.batch "bad" is invalid: spec.schedule: Invalid value: "61 * * * *": end of '
     'range (61) above maximum (59): 61'),
    ("CronJob", {"concurrencyPolicy": "Sometimes"},
     'CronJob.batch "bad" is invalid: spec.concurrencyPolicy: Unsupported value: '
     '"Sometimes": supported values: "Allow", "Forbid", "Replace"'),
    ("CronJob", {"timeZone": "Mars/Olympus"},
     'CronJob.batch "bad" is invalid: spec.timeZone: Invalid value: "Mars/Olympus": unknown '
     'time zone Mars/Olympus'),
    ("PodDisruptionBudget", {"maxUnavailable": 1},
     'PodDisruptionBudget.policy "bad" is invalid: spec: Invalid value: {"MinAvailable":1,'
     '"Selector":{"matchLabels":{"app":"web"}},"MaxUnavailable":1,'
     '"UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set'),
    ("Deployment", {"template": {"spec": TEMPLATE["spec"]}},
     'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: null: '
     '`selector` does not match template `labels`'),
    ("PodDisruptionBudget", {"minAvailable": "150%"},
     'PodDisruptionBudget.policy "bad" is invalid: spec.minAvailable: Invalid value: '
     '"150%": must not be greater than 100%'),
]


@pytest.mark.parametrize("kind,spec,message", BAD, ids=[f"{b[0]}-{i}" for i, b in
                                                        enumerate(BAD)])
def test_bad_input_refused_with_kubes_message(server, namespace, kind, spec, message):
    obj = body(kind, "bad", **spec)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    code, answer = call(server, "POST", url(kind, namespace), obj)
    assert (code, answer["reason"]) == (422, "Invalid")
    assert answer["message"] == message
    code, listed = call(server, "GET", url(kind, namespace))
    assert code == 200 and listed["items"] == []


def test_statefulset_names_are_dns_labels(server, namespace):
    code, answer = call(server, "POST", url("StatefulSet", namespace),
                        body("StatefulSet", "db.v1"))
    assert code == 422
    assert answer["message"].startswith('StatefulSet.apps "db.v1" is invalid: metadata.name: '
                                        'Invalid value: "db.v1": a lowercase RFC 1123 label')


def test_kubectl_shows_the_invalid_template(server, namespace):
    obj = body("Deployment", "bad", selector={"matchLabels": {"app": "x"}})
    out = server.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj),
                         check=False)
    assert out.returncode == 1
    assert 'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: ' \
        '{"app":"web"}: `selector` does not match template `labels`' in out.stderr


def test_selector_is_immutable(server, namespace, apps):
    apps.create_namespaced_deployment(namespace, body("Deployment", "imm"))
    patch = {"spec": {"selector": {"matchLabels": {"app": "web", "v": "2"}},
                      "template": {"metadata": {"labels": {"v": "2"}}}}}
    code, answer = call(server, "PATCH", url("Deployment", namespace, "imm"), patch,
                        "application/strategic-merge-patch+json")
    assert code == 422
    assert answer["message"] == (
        'Deployment.apps "imm" is invalid: spec.selector: Invalid value: {"matchLabels":'
        '{"app":"web","v":"2"}}: field is immutable')


def test_owner_references_validated(server, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "owned", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "uid": ""}]}}
    code, answer = call(server, "POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    assert code == 422
    assert answer["message"] == ('ConfigMap "owned" is invalid: metadata.ownerReferences.uid: '
                                 'Invalid value: "": uid must not be empty')
    cm["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": n, "uid": str(uuid.uuid4()),
         "controller": True} for n in ("a", "b")]
    code, answer = call(server, "POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    assert code == 422
    assert 'Only one reference can have Controller set to true. Found "true" in references ' \
        'for Deployment/a and Deployment/b' in answer["message"]


# delete propagation

def _meta(server, kind: str, ns: str, name: str) -> dict | None:
    code, obj = call(server, "GET", url(kind, ns, name))
    return obj["metadata"] if code == 200 else None


def test_propagation_policies_leave_the_gc_finalizers(server, namespace, apps, batch):
    for name in ("fg", "or", "bg"):
        apps.create_namespaced_deployment(namespace, body("Deployment", name))
    server.kubectl("delete", "deploy", "fg", "-n", namespace, "--cascade=foreground",
                   "--wait=false")
    meta = _meta(server, "Deployment", namespace, "fg")
    assert meta["deletionTimestamp"] and meta["finalizers"] == ["foregroundDeletion"]
    server.kubectl("delete", "deploy", "or", "-n", namespace, "--cascade=orphan",
                   "--wait=false")
    assert _meta(server, "Deployment", namespace, "or")["finalizers"] == ["orphan"]
    server.kubectl("delete", "deploy", "bg", "-n", namespace, "--wait=false")
    assert _meta(server, "Deployment", namespace, "bg") is None

    # what the garbage collector does when it is done: the last finalizer goes, so does it
    apps.patch_namespaced_deployment("fg", namespace, {"metadata": {"finalizers": None}})
    wait_for(lambda: _meta(server, "Deployment", namespace, "fg") is None)

    # batch/v1 Jobs orphan their pods unless asked otherwise; kubectl asks for Background
    batch.create_namespaced_job(namespace, body("Job", "j1"))
    batch.create_namespaced_job(namespace, body("Job", "j2"))
    code, _ = call(server, "DELETE", url("Job", namespace, "j1"))
    assert code == 200
    assert _meta(server, "Job", namespace, "j1")["finalizers"] == ["orphan"]
    server.kubectl("delete", "job", "j2", "-n", namespace, "--wait=false")
    assert _meta(server, "Job", namespace, "j2") is None

    code, answer = call(server, "DELETE", url("Job", namespace, "j1"),
                        {"propagationPolicy": "Sideways"})
    assert code == 422
    assert answer["message"] == ('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                 'Unsupported value: "Sideways": supported values: '
                                 '"Foreground", "Background", "Orphan", "nil"')
    # a second delete with another policy swaps the finalizer, the deletion's time stays
    since = _meta(server, "Job", namespace, "j1")["deletionTimestamp"]
    wait_for(lambda: timefmt.rfc3339() != since)  # a new timestamp would differ now
    code, _ = call(server, "DELETE", url("Job", namespace, "j1"),
                   {"propagationPolicy": "Foreground"})
    meta = _meta(server, "Job", namespace, "j1")
    assert (meta["finalizers"], meta["deletionTimestamp"]) == (["foregroundDeletion"], since)
    batch.patch_namespaced_job("j1", namespace, {"metadata": {"finalizers": None}})


def test_propagation_policy_as_a_query_parameter(server, namespace, apps):
    """The Python client sends DeleteOptions' fields as query parameters."""
    apps.create_namespaced_replica_set(namespace, body("ReplicaSet", "q"))
    apps.delete_namespaced_replica_set("q", namespace, propagation_policy="Foreground")
    assert _meta(server, "ReplicaSet", namespace, "q")["finalizers"] == ["foregroundDeletion"]
    apps.delete_namespaced_replica_set("q", namespace, orphan_dependents=True)
    assert _meta(server, "ReplicaSet", namespace, "q")["finalizers"] == ["orphan"]
    apps.delete_collection_namespaced_replica_set(namespace, propagation_policy="Background")
    wait_for(lambda: _meta(server, "ReplicaSet", namespace, "q") is None)


# eviction and drain

def _node_with_pods(core, node: str, namespace: str, count: int, ready: bool = True,
                    volumes: list | None = None) -> None:
    from kubernetes import client
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=node)))
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
             "uid": str(uuid.uuid4()), "controller": True}
    for i in range(count):
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"web-{i}", "labels": {"app": "web"},
                         "ownerReferences": [owner]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "volumes": volumes or []}})
        if ready:
            core.patch_namespaced_pod_status(f"web-{i}", namespace, {"status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}})


def test_eviction_without_and_with_a_budget(server, namespace, core, policy):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    node = "evict-" + uuid.uuid4().hex[:6]
    try:
        _node_with_pods(core, node, namespace, 3)
        eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="web-0"),
                                     delete_options=client.V1DeleteOptions(
                                         grace_period_seconds=0))
        core.create_namespaced_pod_eviction("web-0", namespace, eviction)
        wait_for(lambda: "web-0" not in [p.metadata.name for p in
                                         core.list_namespaced_pod(namespace).items])

        policy.create_namespaced_pod_disruption_budget(namespace, body(
            "PodDisruptionBudget", "keep", minAvailable=2))
        pdb = wait_for(lambda: (lambda p: p if p.status.observed_generation else None)(
            policy.read_namespaced_pod_disruption_budget("keep", namespace)))
        assert (pdb.status.current_healthy, pdb.status.desired_healthy,
                pdb.status.expected_pods, pdb.status.disruptions_allowed) == (2, 2, 2, 0)
        assert pdb.status.conditions[0].reason == "InsufficientPods"
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod_eviction("web-1", namespace, client.V1Eviction(
                metadata=client.V1ObjectMeta(name="web-1")))
        assert refused.value.status == 429
        answer = json.loads(refused.value.body)
        assert answer["message"] == "Cannot evict pod as it would violate the pod's " \
            "disruption budget."
        assert answer["details"]["causes"] == [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget keep needs 2 healthy pods and has 2 currently"}]
        assert core.read_namespaced_pod("web-1", namespace).metadata.deletion_timestamp is None
    finally:
        core.delete_node(node)


def test_kubectl_drain_respects_the_budget(server, namespace, core, apps, policy):
    node = "drain-" + uuid.uuid4().hex[:6]
    try:
        _node_with_pods(core, node, namespace, 2, volumes=[{"name": "scratch", "emptyDir": {}}])
        # a DaemonSet's pod, which --ignore-daemonsets lets drain pass over (the others have
        # an emptyDir, which --delete-emptydir-data lets it evict)
        ds = apps.create_namespaced_daemon_set(namespace, body("DaemonSet", "agent"))
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "agent-x", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                "uid": ds.metadata.uid, "controller": True}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        policy.create_namespaced_pod_disruption_budget(namespace, body(
            "PodDisruptionBudget", "keep", minAvailable=2))
        out = server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                             "--grace-period=0", "--timeout=7s", check=False, timeout=60)
        assert out.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in \
            out.stderr
        assert core.read_node(node).spec.unschedulable is True
        assert len(core.list_namespaced_pod(namespace).items) == 3

        policy.patch_namespaced_pod_disruption_budget("keep", namespace,
                                                      {"spec": {"minAvailable": 0}})
        out = server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                             "--grace-period=0", "--timeout=30s", timeout=60)
        assert f"node/{node} drained" in out.stdout
        assert f"ignoring DaemonSet-managed Pods: {namespace}/agent-x" in out.stderr
        assert f"evicting pod {namespace}/web-0" in out.stderr + out.stdout
        assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == \
            ["agent-x"]
    finally:
        core.delete_node(node)


def test_eviction_edge_cases(server, namespace, core, policy):
    node = "edge-" + uuid.uuid4().hex[:6]
    evict = f"/api/v1/namespaces/{namespace}/pods/web-0/eviction"
    try:
        _node_with_pods(core, node, namespace, 3)
        code, answer = call(server, "POST", evict, {"apiVersion": "policy/v1",
                                                    "kind": "Eviction", "metadata": {}})
        assert (code, answer["message"]) == (
            400, "name in URL does not match name in Eviction object")
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": "web-0"}}
        for name in ("one", "two"):
            policy.create_namespaced_pod_disruption_budget(namespace, body(
                "PodDisruptionBudget", name, minAvailable=1))
        code, answer = call(server, "POST", evict, eviction)
        assert (code, answer["status"], answer["message"]) == (
            500, "Failure", "This pod has more than one PodDisruptionBudget, which the "
            "eviction subresource does not support.")
        policy.delete_namespaced_pod_disruption_budget("two", namespace)

        # dry run: the budget is checked, nothing is spent or deleted
        code, answer = call(server, "POST", evict + "?dryRun=All", eviction)
        assert (code, answer["status"]) == (201, "Success")
        assert core.read_namespaced_pod("web-0", namespace).metadata.deletion_timestamp is None
        # an unready pod leaves the budget alone while the others are healthy enough
        core.patch_namespaced_pod_status("web-2", namespace, {"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}})
        wait_for(lambda: policy.read_namespaced_pod_disruption_budget(
            "one", namespace).status.current_healthy == 2)
        code, _ = call(server, "POST", f"/api/v1/namespaces/{namespace}/pods/web-2/eviction",
                       {**eviction, "metadata": {"name": "web-2"},
                        "deleteOptions": {"gracePeriodSeconds": 0}})
        assert code == 201
        pdb = policy.read_namespaced_pod_disruption_budget("one", namespace)
        assert pdb.status.disruptions_allowed == 1 and not pdb.status.disrupted_pods
        # a ready one spends it and is remembered as disrupted until it is gone
        code, _ = call(server, "POST", evict, eviction)
        assert code == 201
        pdb = policy.read_namespaced_pod_disruption_budget("one", namespace)
        assert pdb.status.disruptions_allowed == 0
        assert pdb.status.conditions[0].reason == "InsufficientPods"
    finally:
        core.delete_node(node)


def test_budget_of_a_deployment_counts_its_replicas(server, namespace, core, apps, policy):
    dep = apps.create_namespaced_deployment(namespace, body("Deployment", "web"))
    rs = apps.create_namespaced_replica_set(namespace, {**body("ReplicaSet", "web-1"),
                                                        "metadata": {
        "name": "web-1", "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
            "uid": dep.metadata.uid, "controller": True}]}})
    for i in range(2):
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": f"web-{i}", "labels": {"app": "web"}, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                "uid": rs.metadata.uid, "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
    policy.create_namespaced_pod_disruption_budget(namespace, body(
        "PodDisruptionBudget", "half", minAvailable=None, maxUnavailable="50%"))
    pdb = wait_for(lambda: (lambda p: p if p.status.expected_pods else None)(
        policy.read_namespaced_pod_disruption_budget("half", namespace)))
    assert (pdb.status.expected_pods, pdb.status.desired_healthy,
            pdb.status.current_healthy) == (4, 2, 0)
    # a pod whose controller does not exist: nothing may be disrupted
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "stray", "labels": {"app": "web"}, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
            "uid": str(uuid.uuid4()), "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    pdb = wait_for(lambda: (lambda p: p if p.status.conditions[0].reason == "SyncFailed"
                            else None)(
        policy.read_namespaced_pod_disruption_budget("half", namespace)))
    assert pdb.status.conditions[0].message == 'found no controllers for pod "stray"'
    assert pdb.status.disruptions_allowed == 0


def test_namespace_deletion_takes_jobs_too(server, core, batch):
    """A Job orphans by default; the namespace's deletion removes it all the same."""
    from kubernetes import client
    ns = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    batch.create_namespaced_job(ns, body("Job", "j"))
    core.delete_namespace(ns)
    wait_for(lambda: ns not in [n.metadata.name for n in core.list_namespace().items],
             timeout=30)
    code, listed = call(server, "GET", f"/apis/batch/v1/namespaces/{ns}/jobs")
    assert code == 200 and listed["items"] == []


def test_client_side_reapply_merges_template_containers_by_name(server, namespace):
    manifest = body("Deployment", "csa")
    server.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    server.kubectl("set", "env", "deploy/csa", "-n", namespace, "MODE=fast")
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    out = server.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    assert "deployment.apps/csa configured" in out.stdout
    dep = json.loads(server.kubectl("get", "deploy", "csa", "-n", namespace, "-o",
                                    "json").stdout)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37"
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert dep["metadata"]["generation"] == 3


def test_every_kind_server_side_applied_watched_and_patched(server, namespace, apps, batch,
                                                            policy):
    from kubernetes import watch
    manifest = "\n---\n".join(yaml.safe_dump(body(kind, "every")) for kind in PLURALS)
    out = server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    assert out.stdout.count("serverside-applied") == len(PLURALS)
    lists = {"Deployment": apps.list_namespaced_deployment,
             "ReplicaSet": apps.list_namespaced_replica_set,
             "DaemonSet": apps.list_namespaced_daemon_set,
             "StatefulSet": apps.list_namespaced_stateful_set,
             "Job": batch.list_namespaced_job, "CronJob": batch.list_namespaced_cron_job,
             "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget}
    for kind, plural in PLURALS.items():
        server.kubectl("label", plural, "every", "-n", namespace, "tier=front")
        stream = watch.Watch().stream(lists[kind], namespace, timeout_seconds=5)
        event = next(stream)
        assert (event["type"], event["object"].metadata.name,
                event["object"].metadata.labels) == ("ADDED", "every", {"tier": "front"}), kind
        stream.close()
