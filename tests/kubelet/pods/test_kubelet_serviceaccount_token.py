"""Service account tokens in pods, through the real API server and pykubelet: the kube-api-access
volume the admission adds (token, ca.crt, namespace) mounted in the container, the token bound
to the pod, read from the pod's output and accepted by the API server, and refused once the pod
is gone (busybox's wget cannot call from inside: its own TLS shares no cipher suite with the
server's); a projected token of another audience and
lifetime; and the token manager's refresh timing against the API server with a clock of the
test's (no waiting)."""
from __future__ import annotations

import base64
import json
import os
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubelet.config_objects import ObjectUnavailable
from kubelet.volumes.token_manager import TokenKey, TokenManager
from kubelet_testlib import IMAGE, wait_for

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def sections(api, namespace: str, name: str, count: int) -> list[str] | None:
    out = api.kubectl("logs", "-n", namespace, name)
    parts = out.stdout.split("==\n") if out.returncode == 0 else []
    return parts if len(parts) > count else None


@pytest.mark.root
def test_pod_calls_the_api_server_with_its_token(api, api_server, kubelet, namespace):
    # The token names the pod's node with its uid: the Node must be registered first (a
    # token asked before that says the node's name only, as kube-apiserver's).
    wait_for(lambda: api.get(f"/api/v1/nodes/{kubelet.node}"), what="the node registered")
    script = (f"cd {MOUNT} && cat namespace && echo && echo == && cat token && echo && "
              "echo == && ls -l && echo == && exec sleep 1000")
    api.create_pod(namespace, {"metadata": {"name": "caller"}, "spec": {
        "nodeName": kubelet.node, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", script]}]}})
    running = wait_for(lambda: api.running(namespace, "caller"), timeout=60,
                       what="pod Running")
    uid = running["metadata"]["uid"]
    ns_text, token, listing = wait_for(
        lambda: sections(api, namespace, "caller", 3), what="the pod's output")[:3]
    assert ns_text.strip() == namespace
    token = token.strip()
    said = claims(token)
    node_uid = api.get(f"/api/v1/nodes/{kubelet.node}")["metadata"]["uid"]
    assert said["sub"] == f"system:serviceaccount:{namespace}:default"
    assert said["aud"] == [ISSUER]
    assert said["kubernetes.io"]["pod"] == {"name": "caller", "uid": uid}
    assert said["kubernetes.io"]["node"] == {"name": kubelet.node, "uid": node_uid}
    # kube-api-access asks for 3607 s: kube-apiserver makes it a year, warning after 3607 s
    assert said["exp"] - said["iat"] == 365 * 24 * 3600
    assert said["kubernetes.io"]["warnafter"] == said["iat"] + 3607
    names = sorted(line.split()[-3] for line in listing.splitlines()
                   if line.startswith("l"))
    assert names == ["ca.crt", "namespace", "token"]

    volume = next(v["name"] for v in running["spec"]["volumes"]
                  if v["name"].startswith("kube-api-access-"))
    host_dir = os.path.join(kubelet.root, "pods", uid, "volumes", "kubernetes.io~projected",
                            volume)
    with open(os.path.join(host_dir, "ca.crt")) as f, \
            open(os.path.join(api_server.data_dir, "pki", "ca.crt")) as ca:
        assert f.read() == ca.read()
    assert os.readlink(os.path.join(host_dir, "token")) == "..data/token"
    assert oct(os.stat(os.path.join(host_dir, "token")).st_mode & 0o777) == "0o644"

    as_pod = api_server.client(token=token)
    try:
        review = client.AuthenticationV1Api(as_pod).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        user = review.status.user_info
        assert user.username == f"system:serviceaccount:{namespace}:default"
        assert user.extra["authentication.kubernetes.io/pod-name"] == ["caller"]
        assert user.extra["authentication.kubernetes.io/pod-uid"] == [uid]
        assert user.extra["authentication.kubernetes.io/node-name"] == [kubelet.node]
        with pytest.raises(ApiException) as e:
            client.CoreV1Api(as_pod).list_namespaced_pod(namespace)
        assert e.value.status == 403

        api.delete_pod(namespace, "caller")
        wait_for(lambda: api.pod(namespace, "caller") is None, timeout=60,
                 what="pod deleted")
        with pytest.raises(ApiException) as e:
            client.AuthenticationV1Api(as_pod).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert e.value.status == 401
    finally:
        as_pod.close()


@pytest.mark.root
def test_projected_token_of_another_audience(api, kubelet, namespace):
    api.create_pod(namespace, {"metadata": {"name": "vault"}, "spec": {
        "nodeName": kubelet.node, "terminationGracePeriodSeconds": 1,
        "automountServiceAccountToken": False,
        "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "cat /t/vault-token; echo; echo ==; "
                                    "exec sleep 1000"],
                        "volumeMounts": [{"name": "t", "mountPath": "/t"}]}],
        "volumes": [{"name": "t", "projected": {"defaultMode": 0o440, "sources": [
            {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600,
                                     "path": "vault-token"}}]}}]}})
    running = wait_for(lambda: api.running(namespace, "vault"), timeout=60,
                       what="pod Running")
    assert [v["name"] for v in running["spec"]["volumes"]] == ["t"]
    token = wait_for(lambda: sections(api, namespace, "vault", 1),
                     what="the pod's output")[0].strip()
    said = claims(token)
    assert said["aud"] == ["vault"] and said["exp"] - said["iat"] == 600
    assert "warnafter" not in said["kubernetes.io"]
    review = api.client.create("/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": ["vault"]}})
    assert review["status"]["authenticated"] and review["status"]["audiences"] == ["vault"]
    review = api.client.create("/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token}})
    assert not review["status"]["authenticated"]
    api.delete_pod(namespace, "vault")
    wait_for(lambda: api.pod(namespace, "vault") is None, timeout=60, what="pod deleted")


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_token_manager_refresh_timing(api, namespace):
    """Refreshed after 80 % of the lifetime it asked for (3607 s, although the token lives a
    year), earlier by the jitter, after 24 h whatever the lifetime; a failed refresh keeps the
    token while it is valid; forget_pod drops a pod's tokens."""
    pod = api.create_pod(namespace, {"metadata": {"name": "p"}, "spec": {
        "schedulerName": "nobody", "containers": [{"name": "c", "image": IMAGE}]}})
    clock, jitter = Clock(), [0.0]
    manager = TokenManager(api.client, clock=clock, jitter=lambda: jitter[0])
    key = TokenKey(namespace, "default", "p", pod["metadata"]["uid"], (), 3607)
    first = manager.token(key)
    assert claims(first)["kubernetes.io"]["pod"]["name"] == "p"
    clock.offset = 0.8 * 3607 - 5
    assert manager.token(key) == first
    jitter[0] = 10.0
    second = manager.token(key)
    assert second != first
    jitter[0] = 0.0
    clock.offset = 0.8 * 3607 - 5   # measured from the second token's issue time (now)
    assert manager.token(key) == second
    clock.offset += 10
    assert manager.token(key) != second

    long = TokenKey(namespace, "default", "p", pod["metadata"]["uid"], ("x",), 3 * 24 * 3600)
    clock.offset = 0
    held = manager.token(long)
    clock.offset = 24 * 3600 - 5
    assert manager.token(long) == held
    clock.offset = 24 * 3600 + 5
    held = manager.token(long)

    # the account is gone: the refresh fails, the token held serves until it expires
    api.client.delete(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
    try:
        clock.offset = 0.8 * 3 * 24 * 3600 + 5  # due for a refresh, not expired
        try:
            assert manager.token(long) == held
        except ObjectUnavailable:
            pytest.fail("a held token that is still valid was not returned")
        clock.offset = 3 * 24 * 3600 + 5
        with pytest.raises(ObjectUnavailable, match='failed to fetch token: .*serviceaccounts '
                           '"default" not found'):
            manager.token(long)
    finally:
        wait_for(lambda: api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
                 what="default account recreated")
    clock.offset = 0
    last = manager.token(key)
    assert manager.token(key) == last
    manager.forget_pod(pod["metadata"]["uid"])
    assert manager.token(key) != last
    api.delete_pod(namespace, "p", grace=0)


@pytest.mark.root
def test_token_file_owner_and_mode(api, namespace, tmp_path):
    """The kubelet's volume code on a pod of the API server: a pod whose containers all run as
    one user gets the token as that user's, mode 0600 (0640 with fsGroup's group read); other
    pods get the volume's defaultMode, root's."""
    from kubelet.config_objects import ConfigObjects
    from kubelet.object_cache import ObjectCache
    from kubelet.pods import Pod
    from kubelet.volumes.manager import Volumes

    cache = ObjectCache(api.client, max_idle=60)
    volumes = Volumes(str(tmp_path), ConfigObjects(api.client, cache=cache), 1, 64 << 20)
    made = []
    try:
        for name, security, container_user, expected in (
                ("owned", {"runAsUser": 1000, "fsGroup": 2000}, None, (0o640, 1000, 2000)),
                ("split", {"runAsUser": 1000}, 1001, (0o644, 0, 0)),
                ("plain", {}, None, (0o644, 0, 0))):
            container = {"name": "c", "image": IMAGE}
            if container_user is not None:
                container["securityContext"] = {"runAsUser": container_user}
            pod = Pod(api.create_pod(namespace, {"metadata": {"name": name}, "spec": {
                "schedulerName": "nobody", "securityContext": security,
                "initContainers": [{"name": "i", "image": IMAGE}],
                "containers": [container]}}))
            made.append(pod)
            cache.register(pod)
            paths = volumes.setup(pod)
            [directory] = [p for v, p in paths.items() if v.startswith("kube-api-access-")]
            st = os.stat(os.path.join(directory, "token"))
            assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == expected, name
            assert claims(open(os.path.join(directory, "token")).read())["kubernetes.io"][
                "pod"]["name"] == name
            assert volumes.setup(pod) == paths  # nothing to write the second time
    finally:
        cache.stop()
        for pod in made:
            volumes.teardown(pod.uid)
            api.delete_pod(namespace, pod.name, grace=0)
