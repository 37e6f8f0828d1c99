"""Updates of a PersistentVolumeClaim and Events of another namespace, as kube-apiserver 1.35
answers them: a claim's spec is fixed after creation but for a volumeName set once, a
storageClassName set where there was none and, once bound, its storage request (not below its
capacity) and volumeAttributesClassName; the refusal shows the difference as kube's does. The
request grows only where the claim's StorageClass exists and allows expansion (403 from kube's
PersistentVolumeClaimResize admission otherwise). An Event must be in its involved object's
namespace (one without: default), unless it has an eventTime, which also asks who reported it;
its name may be anything a URL's path segment can hold. The table was read from the real kube-apiserver (../shared/refbin); the slow test reads it
again and compares."""
from __future__ import annotations

import time

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from testlib.kube_reference import kube_admin_client

EVENT_TIME = {"eventTime": "2026-12-07T03:00:00.000000Z", "reportingComponent": "c",
              "reportingInstance": "i", "action": "A"}


def _answer(call) -> tuple[int, str]:
    try:
        call()
    except ApiError as e:
        return e.code, e.message
    return 200, ""


def answers(client: ApiClient, namespace: str) -> list[tuple[str, int, str]]:
    """Each step with the code and message of its answer (200 and "" for a success); the
    Events that default and kube-system get are named after the namespace."""
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    events = f"/api/v1/namespaces/{namespace}/events"
    out = []

    def step(name: str, call) -> None:
        out.append((name, *_answer(call)))

    def patch(spec: dict, sub: str = "", claim: str = "p1"):
        return lambda: client.patch(f"{claims}/{claim}{sub}", spec)

    def event(name: str, involved: dict, path: str = events, **more):
        return lambda: client.create(path, {
            "metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "x", **involved},
            "reason": "R", "message": "m", "type": "Normal", **more})

    client.create(claims, {"metadata": {"name": "p1"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    step("access modes", patch({"spec": {"accessModes": ["ReadWriteMany"]}}))
    step("request, unbound", patch({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}))
    step("limits added", patch({"spec": {"resources": {"limits": {"storage": "3Gi"}}}}))
    step("storage class from none", patch({"spec": {"storageClassName": "fast"}}))
    step("attributes class, unbound", patch({"spec": {"volumeAttributesClassName": "gold"}}))
    step("bad access mode and volume mode", patch({"spec": {"accessModes": ["Bogus"],
                                                            "volumeMode": "Block"}}))
    step("volume name set", patch({"spec": {"volumeName": "pv-a"}}))
    step("volume name changed", patch({"spec": {"volumeName": "pv-b"}}))
    step("bound", patch({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                                    "accessModes": ["ReadWriteOnce"]}}, "/status"))
    step("request below capacity", patch({"spec": {"resources": {"requests": {
        "storage": "500Mi"}}}}))
    step("request grown, no such class", patch({"spec": {"resources": {"requests": {
        "storage": "2Gi"}}}}))
    step("attributes class, bound", patch({"spec": {"volumeAttributesClassName": "gold"}}))
    step("attributes class to none", patch({"spec": {"volumeAttributesClassName": None}}))
    step("access modes, bound", patch({"spec": {"accessModes": ["ReadOnlyMany"]}}))
    step("labels", patch({"metadata": {"labels": {"a": "b"}}}))
    grown(client, claims, f"grow-{namespace}", step, patch)

    step("event of another namespace", event("e1", {"namespace": "other"}))
    step("event without a namespace", event("e2", {}))
    step("event of its namespace", event("e3", {"namespace": namespace}))
    step("event moved to another namespace", lambda: client.patch(
        f"{events}/e3", {"involvedObject": {"namespace": "other"}}))
    step("event without a namespace in default", event(
        f"e4-{namespace}", {}, "/api/v1/namespaces/default/events"))
    step("event of another namespace in default", event(
        "e5", {"namespace": "other"}, "/api/v1/namespaces/default/events"))
    step("event with eventTime of another namespace", event(
        "e6", {"namespace": "other"}, **EVENT_TIME))
    step("event with eventTime without a namespace", event("e7", {}, **EVENT_TIME))
    step("event with eventTime without a namespace in kube-system", event(
        f"e8-{namespace}", {}, "/api/v1/namespaces/kube-system/events", **EVENT_TIME))
    step("event with eventTime, no reporter", event(
        "e9", {"namespace": namespace}, eventTime=EVENT_TIME["eventTime"]))
    step("event with eventTime, bad reporter and long action", event(
        "e10", {"namespace": namespace}, **{**EVENT_TIME, "reportingComponent": "a/b/c",
                                            "action": "x" * 129}))
    for name in ("E_10", "a%b", ".."):
        step(f"event named {name}", event(name, {"namespace": namespace}))
    return out


def once_admitted(call, timeout: float = 10.0):
    """call, tried again while it is refused with 403: kube-apiserver's resize admission reads
    StorageClasses from its informer, which can answer from before the class's change (a
    rehearsal's run did)."""
    def run():
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except ApiError as e:
                if e.code != 403 or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
    return run


def grown(client: ApiClient, claims: str, class_name: str, step, patch) -> None:
    """Claim p2 of a StorageClass of its own (cluster-scoped: named after the namespace), bound,
    grows: refused until the class allows expansion."""
    classes = "/apis/storage.k8s.io/v1/storageclasses"
    client.create(classes, {"metadata": {"name": class_name}, "provisioner": "example.com/grow"})
    try:
        client.create(claims, {"metadata": {"name": "p2"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "storageClassName": class_name,
            "resources": {"requests": {"storage": "1Gi"}}}})
        client.patch(f"{claims}/p2/status", {"status": {
            "phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}})
        grow = {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
        step("request grown, class without allowVolumeExpansion", patch(grow, claim="p2"))
        client.patch(f"{classes}/{class_name}", {"allowVolumeExpansion": True})
        step("request grown, class allows expansion", once_admitted(patch(grow, claim="p2")))
    finally:
        client.delete(f"{classes}/{class_name}")


# How kube-apiserver 1.35 refuses a change of a claim's spec, before the difference.
IMMUTABLE = ('PersistentVolumeClaim "p1" is invalid: spec: Forbidden: spec is immutable after '
             "creation except resources.requests and volumeAttributesClassName for bound "
             "claims\n")
# (step, code, message) as kube-apiserver 1.35 answered.
EXPECTED: list[tuple[str, int, str]] = [
    ('access modes', 422,
     IMMUTABLE +
     "@@ -1,6 +1,6 @@\n"
     " {\n"
     '  "AccessModes": [\n'
     '-  "ReadWriteOnce"\n'
     '+  "ReadWriteMany"\n'
     "  ],\n"
     '  "Selector": null,\n'
     '  "Resources": {\n'),
    ('request, unbound', 422,
     IMMUTABLE +
     "@@ -6,7 +6,7 @@\n"
     '  "Resources": {\n'
     '   "Limits": null,\n'
     '   "Requests": {\n'
     '-   "storage": "1Gi"\n'
     '+   "storage": "2Gi"\n'
     "   }\n"
     "  },\n"
     '  "VolumeName": "",\n'),
    ('limits added', 422,
     IMMUTABLE +
     "@@ -4,7 +4,9 @@\n"
     "  ],\n"
     '  "Selector": null,\n'
     '  "Resources": {\n'
     '-  "Limits": null,\n'
     '+  "Limits": {\n'
     '+   "storage": "3Gi"\n'
     "+  },\n"
     '   "Requests": {\n'
     '    "storage": "1Gi"\n'
     "   }\n"),
    ('storage class from none', 200, ""),
    ('attributes class, unbound', 422,
     IMMUTABLE +
     "@@ -14,5 +14,5 @@\n"
     '  "VolumeMode": "Filesystem",\n'
     '  "DataSource": null,\n'
     '  "DataSourceRef": null,\n'
     '- "VolumeAttributesClassName": null\n'
     '+ "VolumeAttributesClassName": "gold"\n'
     " }\n"),
    ('bad access mode and volume mode', 422,
     'PersistentVolumeClaim "p1" is invalid: [spec.accessModes: Unsupported '
     'value: "Bogus": supported values: "ReadOnlyMany", "ReadWriteMany", "Re'
     'adWriteOnce", "ReadWriteOncePod", spec: Forbidden: spec is immutable a'
     "fter creation except resources.requests and volumeAttributesClassName "
     "for bound claims\n"
     "@@ -1,6 +1,6 @@\n"
     " {\n"
     '  "AccessModes": [\n'
     '-  "ReadWriteOnce"\n'
     '+  "Bogus"\n'
     "  ],\n"
     '  "Selector": null,\n'
     '  "Resources": {\n'
     "@@ -11,7 +11,7 @@\n"
     "  },\n"
     '  "VolumeName": "",\n'
     '  "StorageClassName": "fast",\n'
     '- "VolumeMode": "Filesystem",\n'
     '+ "VolumeMode": "Block",\n'
     '  "DataSource": null,\n'
     '  "DataSourceRef": null,\n'
     '  "VolumeAttributesClassName": null\n'
     ', volumeMode: Invalid value: "Block": field is immutable]'),
    ('volume name set', 200, ""),
    ('volume name changed', 422,
     IMMUTABLE +
     "@@ -9,7 +9,7 @@\n"
     '    "storage": "1Gi"\n'
     "   }\n"
     "  },\n"
     '- "VolumeName": "pv-a",\n'
     '+ "VolumeName": "pv-b",\n'
     '  "StorageClassName": "fast",\n'
     '  "VolumeMode": "Filesystem",\n'
     '  "DataSource": null,\n'),
    ('bound', 200, ""),
    ('request below capacity', 422,
     'PersistentVolumeClaim "p1" is invalid: spec.resources.requests.storage'
     ": Forbidden: field can not be less than status.capacity"),
    ('request grown, no such class', 403,
     'persistentvolumeclaims "p1" is forbidden: only dynamically provisioned pvc can be '
     "resized and the storageclass that provisions the pvc must support resize"),
    ('attributes class, bound', 200, ""),
    ('attributes class to none', 200, ""),
    ('access modes, bound', 422,
     IMMUTABLE +
     "@@ -1,6 +1,6 @@\n"
     " {\n"
     '  "AccessModes": [\n'
     '-  "ReadWriteOnce"\n'
     '+  "ReadOnlyMany"\n'
     "  ],\n"
     '  "Selector": null,\n'
     '  "Resources": {\n'),
    ('labels', 200, ""),
    ('request grown, class without allowVolumeExpansion', 403,
     'persistentvolumeclaims "p2" is forbidden: only dynamically provisioned pvc can be '
     "resized and the storageclass that provisions the pvc must support resize"),
    ('request grown, class allows expansion', 200, ""),
    ('event of another namespace', 422,
     'Event "e1" is invalid: involvedObject.namespace: Invalid value: "other'
     '": does not match event.namespace'),
    ('event without a namespace', 422,
     'Event "e2" is invalid: involvedObject.namespace: Invalid value: "": do'
     "es not match event.namespace"),
    ('event of its namespace', 200, ""),
    ('event moved to another namespace', 422,
     'Event "e3" is invalid: involvedObject.namespace: Invalid value: "other'
     '": does not match event.namespace'),
    ('event without a namespace in default', 200, ""),
    ('event of another namespace in default', 422,
     'Event "e5" is invalid: involvedObject.namespace: Invalid value: "other'
     '": does not match event.namespace'),
    ('event with eventTime of another namespace', 200, ""),
    ('event with eventTime without a namespace', 422,
     'Event "e7" is invalid: involvedObject.namespace: Invalid value: "": do'
     "es not match event.namespace"),
    ('event with eventTime without a namespace in kube-system', 200, ""),
    ('event with eventTime, no reporter', 422,
     'Event "e9" is invalid: [reportingComponent: Required value, reportingC'
     'omponent: Invalid value: "": name part must be non-empty, reportingCom'
     'ponent: Invalid value: "": name part must consist of alphanumeric char'
     "acters, '-', '_' or '.', and must start and end with an alphanumeric c"
     "haracter (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
     "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), reportingIn"
     "stance: Required value, action: Required value]"),
    ('event with eventTime, bad reporter and long action', 422,
     'Event "e10" is invalid: [reportingComponent: Invalid value: "a/b/c": a'
     " valid label key must consist of alphanumeric characters, '-', '_' or "
     "'.', and must start and end with an alphanumeric character (e.g. 'MyNa"
     "me',  or 'my.name',  or '123-abc', regex used for validation is '([A-Z"
     "a-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain p"
     'refix and \'/\' (e.g. \'example.com/MyName\'), action: Invalid value: "": '
     "can have at most 128 characters]"),
    ("event named E_10", 200, ""),
    ("event named a%b", 422,
     "Event \"a%b\" is invalid: metadata.name: Invalid value: \"a%b\": may not contain '%'"),
    ("event named ..", 422,
     "Event \"..\" is invalid: metadata.name: Invalid value: \"..\": may not be '..'"),
]


def test_pyapiserver_answers_as_kube(server, namespace):
    client = ApiClient(kubeconfig.load(server.kubeconfig), "claim-event-validation-test")
    try:
        assert answers(client, namespace) == EXPECTED
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_table_is_what_kube_apiserver_answers():
    with kube_admin_client("claim-event-node", "claim-event-validation-test",
                           "validation") as client:
        assert answers(client, "validation") == EXPECTED
