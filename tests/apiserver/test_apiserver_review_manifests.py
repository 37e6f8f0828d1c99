"""`kubectl create -f` of the review kinds, as against kube-apiserver: kubectl finds no PATCH
operation of theirs in /openapi/v3, so it validates them on its side with the protobuf
/openapi/v2 document, which the server serves as kube-apiserver does."""
from __future__ import annotations

import json

import yaml

from kubeapi.protobuf import fields

REVIEWS = [
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
     "spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
     "spec": {"user": "alice", "resourceAttributes": {"verb": "list", "resource": "secrets",
                                                      "namespace": "default"}}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
     "metadata": {"namespace": "default"},
     "spec": {"user": "alice", "resourceAttributes": {"verb": "list", "resource": "secrets",
                                                      "namespace": "default"}}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
     "spec": {"namespace": "default"}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
     "spec": {"token": "not-a-token"}},
]


def _documents(text: str) -> list[dict]:
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text.rstrip()):
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def test_kubectl_creates_each_review_kind_from_a_file(server, tmp_path):
    manifest = tmp_path / "reviews.yaml"
    manifest.write_text(yaml.safe_dump_all(REVIEWS))
    proc = server.kubectl("create", "-f", str(manifest), "-o", "json", check=False)
    assert proc.returncode == 0, proc.stderr
    answered = {obj["kind"]: obj["status"] for obj in _documents(proc.stdout)}
    assert answered["SelfSubjectAccessReview"]["allowed"] is True
    assert answered["SubjectAccessReview"]["allowed"] is False
    assert answered["LocalSubjectAccessReview"]["allowed"] is False
    assert answered["SelfSubjectRulesReview"]["incomplete"] is False
    assert answered["SelfSubjectReview"]["userInfo"]["username"] == "kubernetes-admin"
    assert answered["TokenReview"]["authenticated"] is False
    yaml_out = server.kubectl("create", "-f", str(manifest), "-o", "yaml").stdout
    assert [d["kind"] for d in yaml.safe_load_all(yaml_out)] == [r["kind"] for r in REVIEWS]


def test_kubectl_validates_a_review_with_the_v2_schema(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "bogus": 1}}}))
    proc = server.kubectl("create", "-f", str(bad), "-o", "yaml", check=False)
    assert proc.returncode == 1
    # kube-apiserver 1.35's answer, word for word.
    assert ('error validating data: ValidationError(SelfSubjectAccessReview.spec.'
            'resourceAttributes): unknown field "bogus" in '
            'io.k8s.api.authorization.v1.ResourceAttributes') in proc.stderr


def test_openapi_v2_in_protobuf_carries_every_definition(server):
    import ssl
    import urllib.request

    from apiserver_testlib import ADMIN_TOKEN
    context = ssl.create_default_context(cafile=f"{server.data_dir}/pki/ca.crt")
    request = urllib.request.Request(server.url + "/openapi/v2", headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}",
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    with urllib.request.urlopen(request, context=context, timeout=30) as r:
        assert r.headers["Content-Type"] == \
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        document = dict((n, v) for n, v in fields(r.read()))
    assert document[1] == b"2.0"
    names = {dict(fields(named))[1].decode() for _, named in fields(document[9])}
    assert {"io.k8s.api.authorization.v1.SelfSubjectAccessReview",
            "io.k8s.api.authentication.v1.TokenReview", "io.k8s.api.core.v1.Pod"} <= names
