"""ServiceAccounts and their tokens against kube-apiserver's behaviour: the `default` account
and kube-root-ca.crt in every namespace, TokenRequest (`kubectl create token`, the Python
client, bound to pods), the JWT's claims and signature checked against /openid/v1/jwks, the
authenticator and TokenReview accepting them (audiences, bound objects), and the
ServiceAccount admission of pods."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from kubernetes import client
from kubernetes.client.rest import ApiException

from apiserver_testlib import (BIN, NODE_TOKEN, USER_TOKEN, kubectl_path, start_server,
                               stop_server, wait_for)

ISSUER = "https://kubernetes.default.svc.cluster.local"
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _part(token: str, i: int) -> dict:
    text = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _signature_valid(token: str, jwks: dict) -> bool:
    header = _part(token, 0)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    n, e = (int.from_bytes(base64.urlsafe_b64decode(key[x] + "=" * (-len(key[x]) % 4)), "big")
            for x in ("n", "e"))
    head, body, sig = token.split(".")
    public = rsa.RSAPublicNumbers(e, n).public_key()
    try:
        public.verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
                      f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


def _as(server, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([kubectl_path(), "--server", server.url, "--certificate-authority",
                           os.path.join(server.data_dir, "pki", "ca.crt"), "--token", token,
                           *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def authn(server):
    api = server.client()
    yield client.AuthenticationV1Api(api)
    api.close()


def _review(authn, token: str, audiences: list[str] | None = None):
    spec = {"token": token}
    if audiences:
        spec["audiences"] = audiences
    return authn.create_token_review({"spec": spec}).status


def _token(core, namespace: str, name: str = "default", **spec):
    """A TokenRequest through the Python client; spec in the API's field names."""
    return core.create_namespaced_service_account_token(name, namespace, {"spec": spec})


def _pod(core, namespace: str, name: str, **spec) -> dict:
    body = {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], **spec}}
    return core.api_client.sanitize_for_serialization(
        core.create_namespaced_pod(namespace, body))


def test_every_namespace_has_default_and_root_ca(server, core, namespace):
    listed = server.kubectl("get", "sa", "-A").stdout.splitlines()
    assert listed[0].split() == ["NAMESPACE", "NAME", "SECRETS", "AGE"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", namespace):
        assert any(line.split()[:3] == [ns, "default", "0"] for line in listed[1:]), ns
    ca = open(os.path.join(server.data_dir, "pki", "ca.crt")).read()
    cm = core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    assert cm.data == {"ca.crt": ca}
    assert "kube-apiserver" in cm.metadata.annotations["kubernetes.io/description"]

    old_uid = core.read_namespaced_service_account("default", namespace).metadata.uid
    server.kubectl("delete", "sa", "default", "-n", namespace)

    def recreated():
        try:
            return core.read_namespaced_service_account("default", namespace).metadata.uid \
                != old_uid
        except ApiException:
            return False
    wait_for(recreated)
    core.patch_namespaced_config_map("kube-root-ca.crt", namespace, {"data": {"ca.crt": "x"}})
    wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace).data ==
             {"ca.crt": ca})
    server.kubectl("delete", "cm", "kube-root-ca.crt", "-n", namespace)
    wait_for(lambda: server.kubectl("get", "cm", "kube-root-ca.crt", "-n", namespace,
                                    check=False).returncode == 0)


def test_serviceaccount_resource(server, core, namespace):
    out = server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "bot", "namespace": namespace},
        "automountServiceAccountToken": False})).stdout
    assert out == "serviceaccount/bot created\n"
    sa = core.read_namespaced_service_account("bot", namespace)
    assert sa.automount_service_account_token is False
    resources = server.kubectl("api-resources", "--api-group=").stdout
    assert any(line.split() == ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"]
               for line in resources.splitlines())
    assert "KIND:       ServiceAccount" in server.kubectl("explain", "sa").stdout
    bad = server.kubectl("create", "sa", "Bad_Name", "-n", namespace, check=False)
    assert bad.returncode == 1 and 'ServiceAccount "Bad_Name" is invalid: metadata.name' \
        in bad.stderr


def test_kubectl_create_token(server, namespace):
    token = server.kubectl("create", "token", "default", "-n", namespace,
                           "--duration=10m").stdout.strip()
    header, claims = _part(token, 0), _part(token, 1)
    assert header["alg"] == "RS256"
    assert set(claims) == {"aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"}
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:default"
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 120
    uid = json.loads(server.kubectl("get", "sa", "default", "-n", namespace, "-o",
                                    "json").stdout)["metadata"]["uid"]
    assert claims["kubernetes.io"] == {"namespace": namespace,
                                       "serviceaccount": {"name": "default", "uid": uid}}
    jwks = json.loads(server.kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    assert _signature_valid(token, jwks)

    whoami = json.loads(_as(server, token, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"] == {
        "username": f"system:serviceaccount:{namespace}:default", "uid": uid,
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                   "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}}
    denied = _as(server, token, "get", "pods", "-n", namespace)
    assert denied.returncode == 1
    assert f'User "system:serviceaccount:{namespace}:default" cannot list resource "pods"' \
        in denied.stderr
    assert _as(server, token, "auth", "can-i", "create",
               "selfsubjectaccessreviews").stdout == "yes\n"
    assert _as(server, token + "x", "auth", "whoami").returncode == 1

    short = server.kubectl("create", "token", "default", "-n", namespace, "--duration=10s",
                           check=False)
    assert short.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "" is '
        'invalid: spec.expirationSeconds: Invalid value: 10: may not specify a duration less '
        'than 10 minutes')
    ghost = server.kubectl("create", "token", "ghost", "-n", namespace, check=False)
    assert ghost.stderr.strip() == \
        'error: failed to create token: serviceaccounts "ghost" not found'


def test_token_request_by_the_python_client(server, core, authn, namespace):
    answer = _token(core, namespace)
    assert answer.kind == "TokenRequest" and answer.api_version == "authentication.k8s.io/v1"
    assert answer.spec.audiences == [ISSUER] and answer.spec.expiration_seconds == 3600
    claims = _part(answer.status.token, 1)
    assert answer.status.expiration_timestamp.timestamp() == claims["iat"] + 3600
    status = _review(authn, answer.status.token)
    assert status.authenticated and status.audiences == [ISSUER]
    assert status.user.username == f"system:serviceaccount:{namespace}:default"

    # another audience: valid where asked for it, not for this API
    vault = _token(core, namespace, audiences=["vault"], expirationSeconds=600).status.token
    assert _part(vault, 1)["aud"] == ["vault"]
    assert not _review(authn, vault).authenticated
    status = _review(authn, vault, ["vault", "other"])
    assert status.authenticated and status.audiences == ["vault"]
    as_vault = server.client(token=vault)
    try:
        with pytest.raises(ApiException) as e:
            client.CoreV1Api(as_vault).list_namespace()
        assert e.value.status == 401
    finally:
        as_vault.close()

    for spec, code, message in (
            ({"expirationSeconds": 599}, 422,
             'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
             'Invalid value: 599: may not specify a duration less than 10 minutes'),
            ({"expirationSeconds": 2 ** 32 + 1}, 422,
             'spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration '
             'larger than 2^32 seconds'),
            ({"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}, 400,
             "cannot bind token to object of type apps/v1, Kind=Deployment"),
            ({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "nope"}}, 404,
             'pods "nope" not found')):
        with pytest.raises(ApiException) as e:
            _token(core, namespace, **spec)
        assert e.value.status == code, spec
        assert message in json.loads(e.value.body)["message"], spec


def test_pod_bound_token(core, authn, namespace):
    pod = _pod(core, namespace, "web")
    uid = pod["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid}
    answer = _token(core, namespace, boundObjectRef=ref, expirationSeconds=3607)
    claims = _part(answer.status.token, 1)
    # a kube-api-access token lives a year and warns after the hour asked for
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] == claims["iat"] + 3607
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": uid}
    assert answer.status.expiration_timestamp.timestamp() == claims["iat"] + 3607
    status = _review(authn, answer.status.token)
    assert status.authenticated
    extra = status.user.extra
    assert extra["authentication.kubernetes.io/pod-name"] == ["web"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [uid]

    with pytest.raises(ApiException) as e:
        _token(core, namespace, boundObjectRef={
            "apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "other"})
    assert e.value.status == 409
    assert "the UID in the bound object reference (other) does not match the UID in record" \
        in json.loads(e.value.body)["message"]

    core.delete_namespaced_pod("web", namespace)  # unscheduled: gone at once
    assert not _review(authn, answer.status.token).authenticated
    _pod(core, namespace, "web")  # the same name, another uid
    assert not _review(authn, answer.status.token).authenticated


def test_token_dies_with_its_service_account(core, authn, namespace):
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    token = _token(core, namespace, "bot").status.token
    assert _review(authn, token).authenticated
    pod = _pod(core, namespace, "p", serviceAccountName="default")
    with pytest.raises(ApiException) as e:
        _token(core, namespace, "bot", boundObjectRef={
            "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": pod["metadata"]["uid"]})
    assert e.value.status == 400 and json.loads(e.value.body)["message"] == (
        'cannot bind token for serviceaccount "bot" to pod running with different '
        'serviceaccount name.')
    core.delete_namespaced_service_account("bot", namespace)
    assert not _review(authn, token).authenticated
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    assert not _review(authn, token).authenticated  # a new account, another uid


def test_issuer_discovery(server, namespace):
    config = json.loads(server.kubectl("get", "--raw",
                                       "/.well-known/openid-configuration").stdout)
    assert config == {"issuer": ISSUER, "jwks_uri": f"{server.url}/openid/v1/jwks",
                      "response_types_supported": ["id_token"],
                      "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": ["RS256"]}
    token = server.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    jwks = json.loads(_as(server, token, "get", "--raw", "/openid/v1/jwks").stdout)
    assert [k["kid"] for k in jwks["keys"]] == [_part(token, 0)["kid"]]
    denied = _as(server, USER_TOKEN, "get", "--raw", "/openid/v1/jwks")
    assert denied.returncode == 1 and "Forbidden" in denied.stderr


def test_pod_admission(core, namespace):
    pod = _pod(core, namespace, "a", initContainers=[{"name": "i", "image": "busybox:1.36"}])
    spec = pod["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    [volume] = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == 21
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                              "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": volume["name"], "readOnly": True, "mountPath": MOUNT}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]

    off = _pod(core, namespace, "b", automountServiceAccountToken=False)["spec"]
    assert "volumes" not in off and "volumeMounts" not in off["containers"][0]
    core.create_namespaced_service_account(namespace, {
        "metadata": {"name": "quiet"}, "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "regcred"}]})
    quiet = _pod(core, namespace, "c", serviceAccountName="quiet")["spec"]
    assert "volumes" not in quiet and quiet["imagePullSecrets"] == [{"name": "regcred"}]
    loud = _pod(core, namespace, "d", serviceAccountName="quiet",
                automountServiceAccountToken=True)["spec"]
    assert loud["volumes"][0]["name"].startswith("kube-api-access-")
    own = _pod(core, namespace, "e", volumes=[{"name": "mine", "emptyDir": {}}], containers=[
        {"name": "c", "image": "busybox:1.36",
         "volumeMounts": [{"name": "mine", "mountPath": MOUNT}]}])["spec"]
    assert [v["name"] for v in own["volumes"]] == ["mine"]

    with pytest.raises(ApiException) as e:
        _pod(core, namespace, "x", serviceAccountName="ghost")
    assert e.value.status == 403
    body = json.loads(e.value.body)
    assert (body["reason"], body["message"]) == ("Forbidden", (
        f'pods "x" is forbidden: error looking up service account {namespace}/ghost: '
        'serviceaccount "ghost" not found'))
    with pytest.raises(ApiException) as e:
        _pod(core, "no-such-namespace", "x")
    assert json.loads(e.value.body)["message"] == 'namespaces "no-such-namespace" not found'
    names = [p.metadata.name for p in core.list_namespaced_pod(namespace).items]
    assert sorted(names) == ["a", "b", "c", "d", "e"]


def test_mirror_pods_are_left_alone_and_may_not_reference_accounts(core, namespace):
    mirror = {"annotations": {"kubernetes.io/config.mirror": "hash"}}
    body = {"metadata": {"name": "m", **mirror},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    spec = core.create_namespaced_pod(namespace, body).spec
    assert spec.service_account_name is None and spec.volumes is None
    for extra, why in (
            ({"serviceAccountName": "default"}, "a mirror pod may not reference service accounts"),
            ({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]},
             "a mirror pod may not reference secrets"),
            ({"volumes": [{"name": "t", "projected": {"sources": [
                {"serviceAccountToken": {"path": "t"}}]}}]},
             "a mirror pod may not use ServiceAccountToken volume projections")):
        refused = {"metadata": {"name": "n", **mirror}, "spec": {**body["spec"], **extra}}
        with pytest.raises(ApiException) as e:
            core.create_namespaced_pod(namespace, refused)
        assert (e.value.status, json.loads(e.value.body)["message"]) == (
            403, f'pods "n" is forbidden: {why}')


def test_service_account_flags(tmp_path):
    """--service-account-signing-key-file (a P-256 key: ES256), --service-account-issuer,
    --api-audiences; a key file that is not one stops the server with one line."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "sa.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    bad = subprocess.run([os.path.join(BIN, "pyapiserver"), "--data-dir",
                          str(tmp_path / "bad"), "--port", "0", "--bind-address", "127.0.0.1",
                          "--service-account-signing-key-file", str(tmp_path / "none.key")],
                         capture_output=True, text=True, timeout=30)
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == (f"pyapiserver: --service-account-signing-key-file "
                          f"{tmp_path}/none.key: No such file or directory\n")
    server = start_server(["--service-account-signing-key-file", str(key_file),
                           "--service-account-issuer", "https://issuer.example",
                           "--service-account-issuer", ISSUER,
                           "--api-audiences", "api,other"])
    try:
        token = server.kubectl("create", "token", "default").stdout.strip()
        assert _part(token, 0)["alg"] == "ES256"
        claims = _part(token, 1)
        assert claims["iss"] == "https://issuer.example" and claims["aud"] == ["api", "other"]
        assert json.loads(_as(server, token, "auth", "whoami", "-o", "json").stdout)[
            "status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
        config = json.loads(server.kubectl("get", "--raw",
                                           "/.well-known/openid-configuration").stdout)
        assert config["issuer"] == "https://issuer.example"
        assert config["id_token_signing_alg_values_supported"] == ["ES256"]
        jwk = json.loads(server.kubectl("get", "--raw", "/openid/v1/jwks").stdout)["keys"][0]
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    finally:
        stop_server(server)


def test_token_checks_with_a_clock():
    """serviceaccount_tokens on its own: times with the leeway, issuer, signature, keys of
    --service-account-key-file, audiences, the bound-object check."""
    from apiserver.pki.serviceaccount_tokens import Ref, TokenIssuer

    now = [1_000_000.0]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = TokenIssuer(rsa_key, ("https://a", "https://b"), ("api",),
                         [rsa_key.public_key()], clock=lambda: now[0])
    token, iat = issuer.issue("ns", Ref("sa", "u1"), ["api"], 600, pod=Ref("p", "u2"))
    assert iat == 1_000_000 and _part(token, 1)["iss"] == "https://a"
    claims, why = issuer.verify(token, ["api"])
    assert why == "" and claims.username == "system:serviceaccount:ns:sa"
    assert claims.pod == Ref("p", "u2") and claims.audiences == ("api",)
    assert issuer.verify(token, ["other"]) == (None, "token audiences are not valid for this "
                                                     "server")
    now[0] += 600 + 60
    assert issuer.verify(token, ["api"])[0] is not None  # within the leeway
    now[0] += 1
    assert issuer.verify(token, ["api"]) == (None, "service account token has expired")
    now[0] = 1_000_000 - 61
    assert issuer.verify(token, ["api"]) == (None, "service account token is not valid yet")
    now[0] = 1_000_000

    head, body, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged["sub"] = "system:serviceaccount:ns:admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert issuer.verify(f"{head}.{forged_body}.{sig}", ["api"]) == (None, "invalid signature")
    assert issuer.verify("a.b", ["api"]) == (None, "not a JWT")

    # a token of another issuer's key: refused, until that key is one of the verifying keys
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = TokenIssuer(other_key, ("https://b",), ("api",), clock=lambda: now[0])
    foreign, _ = other.issue("ns", Ref("sa", "u1"), ["api"], 600)
    assert issuer.verify(foreign, ["api"]) == (None, "invalid signature")
    issuer.verify_keys.append(other_key.public_key())
    assert issuer.verify(foreign, ["api"])[0] is not None
    stranger = TokenIssuer(other_key, ("https://c",), ("api",), clock=lambda: now[0])
    assert issuer.verify(stranger.issue("ns", Ref("sa", "u1"), ["api"], 600)[0], ["api"]) == \
        (None, "token issuer is not ours")
    assert issuer.verify(token, ["api"], lambda c: f"pod {c.pod.name} has been deleted") == \
        (None, "pod p has been deleted")


def test_tokens_outlive_a_restart(own_server):
    """The signing key is kept in <data-dir>/pki/sa.key: a token made before a restart still
    authenticates after it, and the jwks do not change."""
    token = own_server.kubectl("create", "token", "default").stdout.strip()
    jwks = own_server.kubectl("get", "--raw", "/openid/v1/jwks").stdout
    key_file = os.path.join(own_server.data_dir, "pki", "sa.key")
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    own_server.restart()
    assert own_server.kubectl("get", "--raw", "/openid/v1/jwks").stdout == jwks
    whoami = json.loads(_as(own_server, token, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"


def test_nodes_get_tokens_for_their_own_pods_only(server, core, namespace):
    """NodeRestriction as kube's: a kubelet's TokenRequest is bound, by uid, to a pod on it."""
    mine = _pod(core, namespace, "mine", nodeName="n1")
    other = _pod(core, namespace, "other", nodeName="n2")
    as_node = server.client(token=NODE_TOKEN)
    try:
        node = client.CoreV1Api(as_node)

        def ask(ref: dict | None):
            body = {"spec": {"boundObjectRef": ref} if ref else {}}
            return node.create_namespaced_service_account_token("default", namespace, body)

        pod_ref = {"apiVersion": "v1", "kind": "Pod"}
        for ref, why in (
                (None, "node requested token not bound to a pod"),
                ({**pod_ref, "name": "mine"},
                 "node requested token with a pod binding without a uid"),
                ({**pod_ref, "name": "mine", "uid": "x"},
                 "the UID in the bound object reference (x) does not match the UID in "
                 "record. The object might have been deleted and then recreated"),
                ({**pod_ref, "name": "other", "uid": other["metadata"]["uid"]},
                 "node requested token bound to a pod scheduled on a different node")):
            with pytest.raises(ApiException) as e:
                ask(ref)
            assert (e.value.status, json.loads(e.value.body)["message"]) == (
                403, f'serviceaccounts "default" is forbidden: {why}'), ref
        answer = ask({**pod_ref, "name": "mine", "uid": mine["metadata"]["uid"]})
        assert _part(answer.status.token, 1)["kubernetes.io"]["pod"]["name"] == "mine"
    finally:
        as_node.close()
        for name in ("mine", "other"):
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def test_service_account_token_secrets(server, core, authn, namespace):
    """A kubernetes.io/service-account-token Secret gets a long-lived token (kube's legacy
    claims), ca.crt and namespace once its account exists; the token authenticates while the
    Secret holds it and its account lives."""
    server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "bot-token", "namespace": namespace,
                     "annotations": {"kubernetes.io/service-account.name": "bot"}}}))
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    secret = wait_for(lambda: (s := core.read_namespaced_secret("bot-token", namespace)).data
                      and "token" in s.data and s)
    uid = core.read_namespaced_service_account("bot", namespace).metadata.uid
    assert secret.metadata.annotations["kubernetes.io/service-account.uid"] == uid
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert data["namespace"] == namespace
    assert data["ca.crt"] == open(os.path.join(server.data_dir, "pki", "ca.crt")).read()
    token = data["token"]
    assert _part(token, 1) == {
        "iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": "bot-token",
        "kubernetes.io/serviceaccount/service-account.name": "bot",
        "kubernetes.io/serviceaccount/service-account.uid": uid,
        "sub": f"system:serviceaccount:{namespace}:bot"}
    whoami = json.loads(_as(server, token, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:bot"
    assert _review(authn, token).audiences == [ISSUER]
    assert not _review(authn, token, ["vault"]).authenticated

    # the Secret's token replaced: the old one no longer counts; the Secret gone: neither
    core.patch_namespaced_secret("bot-token", namespace, {"data": {
        "token": base64.b64encode(b"other").decode()}})
    assert not _review(authn, token).authenticated
    core.patch_namespaced_secret("bot-token", namespace, {"data": {
        "token": base64.b64encode(token.encode()).decode()}})
    assert _review(authn, token).authenticated
    core.delete_namespaced_secret("bot-token", namespace)
    assert not _review(authn, token).authenticated
