"""The review APIs with the real kubectl (auth can-i, can-i --list, whoami: protobuf bodies)
and the official Python client (SubjectAccessReview, TokenReview: JSON), answered by the
server's own authenticator and authorization policy."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from apiserver_testlib import ADMIN_TOKEN, NODE_TOKEN, USER_TOKEN, kubectl_path

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture
def as_token(server, tmp_path):
    """kubectl with a kubeconfig of a bearer token (there is no impersonation)."""
    def run(token: str, *args: str) -> subprocess.CompletedProcess:
        path = tmp_path / f"{token[:8]}.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {
                "server": server.url,
                "certificate-authority": os.path.join(server.data_dir, "pki", "ca.crt")}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
        return subprocess.run([kubectl_path(), "--kubeconfig", str(path), *args],
                              capture_output=True, text=True, timeout=30)
    return run


def test_kubectl_auth_can_i(server, as_token):
    assert server.kubectl("auth", "can-i", "create", "pods").stdout == "yes\n"
    assert server.kubectl("auth", "can-i", "get", "/healthz").stdout == "yes\n"
    listed = server.kubectl("auth", "can-i", "--list").stdout.splitlines()
    assert listed[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names",
                                 "Verbs"]
    assert listed[1].split() == ["*.*", "[]", "[]", "[*]"]

    node = as_token(NODE_TOKEN, "auth", "can-i", "get", "pods")
    assert (node.returncode, node.stdout) == (0, "yes\n")
    for args in (("create", "secrets"), ("delete", "namespaces"),
                 ("get", "pods", "--subresource=log"), ("create", "pods", "--subresource=exec")):
        node = as_token(NODE_TOKEN, "auth", "can-i", *args)
        assert (node.returncode, node.stdout) == (1, "no\n"), args
    rules = as_token(NODE_TOKEN, "auth", "can-i", "--list").stdout
    assert "leases.coordination.k8s.io" in rules and "tokenreviews.authentication.k8s.io" in rules
    assert "*.*" not in rules

    alice = as_token(USER_TOKEN, "auth", "can-i", "list", "pods")
    assert (alice.returncode, alice.stdout) == (1, "no\n")
    assert as_token(USER_TOKEN, "auth", "can-i", "create",
                    "selfsubjectaccessreviews").stdout == "yes\n"


def test_kubectl_auth_whoami(server, as_token):
    table = server.kubectl("auth", "whoami").stdout.splitlines()
    assert table[0].split() == ["ATTRIBUTE", "VALUE"]
    assert table[1].split() == ["Username", "kubernetes-admin"]
    assert table[2].split() == ["Groups", "[system:masters", "system:authenticated]"]
    review = json.loads(server.kubectl("auth", "whoami", "-o", "json").stdout)
    assert review["kind"] == "SelfSubjectReview"
    assert review["apiVersion"] == "authentication.k8s.io/v1"
    assert review["status"]["userInfo"] == {"username": "kubernetes-admin",
                                            "groups": ["system:masters", "system:authenticated"]}

    node = json.loads(as_token(NODE_TOKEN, "auth", "whoami", "-o", "json").stdout)
    assert node["status"]["userInfo"] == {"username": "system:node:n1", "uid": "uid-n1",
                                          "groups": ["system:nodes", "system:authenticated"]}
    table = as_token(NODE_TOKEN, "auth", "whoami").stdout.splitlines()
    assert table[2].split() == ["UID", "uid-n1"]


def test_reviews_are_listed_create_only_and_explained(server):
    out = server.kubectl("api-resources", "--api-group=authorization.k8s.io", "-o",
                         "wide").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == {"localsubjectaccessreviews", "selfsubjectaccessreviews",
                         "selfsubjectrulesreviews", "subjectaccessreviews"}
    assert all(row[-1] == "create" for row in rows.values())
    out = server.kubectl("api-resources", "--api-group=authentication.k8s.io").stdout
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["selfsubjectreviews",
                                                                  "tokenreviews"]
    explained = server.kubectl("explain", "selfsubjectaccessreviews.spec").stdout
    assert "KIND:       SelfSubjectAccessReview" in explained
    assert "resourceAttributes\t<ResourceAttributes>" in explained
    assert "KIND:       TokenReview" in server.kubectl("explain", "tokenreviews").stdout


def test_token_review(server):
    authn = client.AuthenticationV1Api(server.client())
    try:
        review = authn.create_token_review({"spec": {"token": NODE_TOKEN}})
        assert review.status.authenticated
        assert review.status.user.username == "system:node:n1"
        assert review.status.user.uid == "uid-n1"
        assert review.status.user.groups == ["system:nodes", "system:authenticated"]
        assert review.status.audiences == [API_AUDIENCE]
        review = authn.create_token_review({"spec": {"token": ADMIN_TOKEN,
                                                     "audiences": [API_AUDIENCE]}})
        assert review.status.authenticated and review.status.audiences == [API_AUDIENCE]
        for spec in ({"token": "not-a-token"},
                     {"token": NODE_TOKEN, "audiences": ["https://elsewhere.example"]}):
            review = authn.create_token_review({"spec": spec})
            assert not review.status.authenticated
            assert not review.status.user.username
        with pytest.raises(ApiException) as e:
            authn.create_token_review({"spec": {"token": ""}})
        assert e.value.status == 400
        assert json.loads(e.value.body)["message"] == \
            "token is required for TokenReview in authentication"
    finally:
        authn.api_client.close()
    # a kubelet may review tokens, a plain user may not
    node = client.AuthenticationV1Api(server.client(NODE_TOKEN))
    alice = client.AuthenticationV1Api(server.client(USER_TOKEN))
    try:
        assert node.create_token_review({"spec": {"token": USER_TOKEN}}).status.authenticated
        with pytest.raises(ApiException) as e:
            alice.create_token_review({"spec": {"token": USER_TOKEN}})
        assert e.value.status == 403
    finally:
        node.api_client.close()
        alice.api_client.close()


def test_subject_access_reviews(server, namespace):
    authz = client.AuthorizationV1Api(server.client())
    try:
        def sar(**spec):
            return authz.create_subject_access_review({"spec": spec}).status

        pods = {"verb": "list", "resource": "pods", "namespace": namespace}
        assert not sar(user="alice", resourceAttributes=pods).allowed
        status = sar(user="bob", groups=["system:masters"], resourceAttributes=pods)
        assert status.allowed and 'group "system:masters"' in status.reason
        assert sar(user="n", groups=["system:nodes"], resourceAttributes=pods).allowed
        assert not sar(user="n", groups=["system:nodes"],
                       resourceAttributes={**pods, "verb": "get", "subresource": "log"}).allowed
        assert sar(user="alice", nonResourceAttributes={"path": "/version", "verb": "get"}).allowed
        assert not sar(user="alice", nonResourceAttributes={"path": "/metrics",
                                                            "verb": "get"}).allowed
        local = authz.create_namespaced_local_subject_access_review(namespace, {
            "spec": {"user": "n", "groups": ["system:nodes"],
                     "resourceAttributes": {**pods, "verb": "create"}}})
        assert local.status.allowed and local.metadata.namespace == namespace

        for spec, message in (
                ({"user": "alice"}, "exactly one of nonResourceAttributes or "
                                    "resourceAttributes must be specified"),
                ({"resourceAttributes": pods}, "at least one of user or group must be "
                                               "specified")):
            with pytest.raises(ApiException) as e:
                authz.create_subject_access_review({"spec": spec})
            assert e.value.status == 422 and message in json.loads(e.value.body)["message"]
        with pytest.raises(ApiException) as e:
            authz.create_namespaced_local_subject_access_review(namespace, {
                "spec": {"user": "n", "resourceAttributes": {**pods, "namespace": "other"}}})
        assert e.value.status == 422
        assert "must match metadata.namespace" in json.loads(e.value.body)["message"]
    finally:
        authz.api_client.close()
    alice = client.AuthorizationV1Api(server.client(USER_TOKEN))
    try:
        own = alice.create_self_subject_access_review({"spec": {"resourceAttributes": {
            "verb": "create", "resource": "selfsubjectrulesreviews",
            "group": "authorization.k8s.io"}}})
        assert own.status.allowed
        rules = alice.create_self_subject_rules_review({"spec": {"namespace": namespace}})
        assert not rules.status.incomplete
        assert {"/version"} <= {u for r in rules.status.non_resource_rules
                                for u in r.non_resource_urls}
        with pytest.raises(ApiException) as e:
            alice.create_subject_access_review({"spec": {"user": "x", "resourceAttributes": {
                "verb": "get", "resource": "pods"}}})
        assert e.value.status == 403
    finally:
        alice.api_client.close()
