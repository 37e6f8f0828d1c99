"""Authentication, bad and hostile bodies, durability across restarts, 410 Gone."""
from __future__ import annotations

import http.client
import json
import os
import signal
import ssl

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from apiserver_testlib import NODE_TOKEN, USER_TOKEN, ADMIN_TOKEN


def request(server, method: str, path: str, body: bytes | None = None,
            token: str | None = ADMIN_TOKEN, ctype: str = "application/json",
            headers: dict | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    hdrs = {"Content-Type": ctype, **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(data) if data.startswith(b"{") else {"raw": data}


def test_anonymous_and_bad_tokens_get_401(server):
    status, body = request(server, "GET", "/api/v1/namespaces", token=None)
    assert status == 401 and body["reason"] == "Unauthorized"
    status, body = request(server, "GET", "/api/v1/namespaces", token="not-a-token")
    assert status == 401 and body["kind"] == "Status"
    api = server.client("wrong-token")
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(api).list_namespace()
    assert e.value.status == 401


def test_token_groups_decide_what_is_allowed(server):
    status, _ = request(server, "GET", "/api/v1/namespaces", token=ADMIN_TOKEN)
    assert status == 200
    # alice has no group: discovery only.
    assert request(server, "GET", "/api", token=USER_TOKEN)[0] == 200
    status, body = request(server, "GET", "/api/v1/namespaces/default/pods", token=USER_TOKEN)
    assert status == 403 and 'User "alice" cannot list resource "pods"' in body["message"]
    # A kubelet (group system:nodes) registers its node and reads pods, but writes no secrets.
    node = client.CoreV1Api(server.client(NODE_TOKEN))
    node.create_node({"metadata": {"name": "n1-auth"}})
    node.patch_node_status("n1-auth", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}})
    node.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1-auth")
    with pytest.raises(ApiException) as e:
        node.create_namespaced_secret("default", {"metadata": {"name": "x"}})
    assert e.value.status == 403
    node.delete_node("n1-auth")


def test_malformed_bodies_get_400(server):
    path = "/api/v1/namespaces/default/configmaps"
    status, body = request(server, "POST", path, b'{"metadata": {"name": ')
    assert status == 400 and body["kind"] == "Status" and body["reason"] == "BadRequest"
    status, body = request(server, "POST", path, b"metadata: [unclosed",
                           ctype="application/yaml")
    assert status == 400 and "YAML" in body["message"]
    status, body = request(server, "POST", path,
                           b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n",
                           ctype="application/yaml")
    assert status == 201 and body["metadata"]["name"] == "from-yaml"
    status, body = request(server, "POST", path, b'["not", "an", "object"]')
    assert status == 400


def test_huge_and_deep_bodies_are_refused_and_server_stays_up(server):
    path = "/api/v1/namespaces/default/configmaps"
    big = json.dumps({"metadata": {"name": "big"}, "data": {"x": "a" * (2 * 1024 * 1024)}})
    status, body = request(server, "POST", path, big.encode())
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    deep = b'{"metadata": {"name": "deep"}, "data": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    status, body = request(server, "POST", path, deep)
    assert status == 400 and "nested too deeply" in body["message"]
    deep_yaml = b"a: " + b"[" * 50000 + b"]" * 50000
    status, body = request(server, "POST", path, deep_yaml, ctype="application/yaml")
    assert status == 400
    assert server.alive()
    assert request(server, "GET", "/version")[0] == 200


def test_restart_loses_no_acknowledged_write(own_server):
    core = client.CoreV1Api(own_server.client())
    for i in range(20):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"w{i}"},
                                                      "data": {"i": str(i)}})
    core.patch_namespaced_config_map("w3", "default", {"data": {"i": "patched"}})
    before = core.list_namespaced_config_map("default").metadata.resource_version
    core.api_client.close()
    own_server.restart(signal.SIGKILL)  # no clean shutdown: every answer must already be on disk
    core = client.CoreV1Api(own_server.client())
    items = core.list_namespaced_config_map("default")
    assert sorted(c.metadata.name for c in items.items) == \
        sorted([f"w{i}" for i in range(20)] + ["kube-root-ca.crt"])
    assert core.read_namespaced_config_map("w3", "default").data == {"i": "patched"}
    assert int(items.metadata.resource_version) >= int(before)
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    assert int(created.metadata.resource_version) > int(before)  # revisions never go back
    core.api_client.close()


def test_watch_from_compacted_revision_is_410(tmp_path):
    """In-process server, so that the test can compact the revision log."""
    from apiserver.server import ApiServer
    srv = ApiServer(str(tmp_path), "127.0.0.1", 0)
    srv.start()
    try:
        from kubernetes import config, watch
        api = config.new_client_from_config(config_file=srv.kubeconfig)
        core = client.CoreV1Api(api)
        old = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        for i in range(5):
            core.patch_namespaced_config_map("a", "default", {"data": {"i": str(i)}})
        srv.storage.compact(srv.storage.current_revision())
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=old.metadata.resource_version,
                                          timeout_seconds=2):
                pass
        assert e.value.status == 410
        core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        page = core.list_namespaced_config_map("default", limit=1)
        core.patch_namespaced_config_map("b", "default", {"data": {"i": "x"}})
        srv.storage.compact(srv.storage.current_revision())
        with pytest.raises(ApiException) as e:
            core.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
        assert e.value.status == 410 and "continue" in json.loads(e.value.body)["message"]
        api.close()
    finally:
        srv.stop()
