"""Wire details that clients check: every NodeSystemInfo field a string (the official Python
client refuses a Node otherwise) and no empty omitempty fields (kubectl's protobuf bodies carry
every string of ObjectMeta, empty or not)."""
from __future__ import annotations

import http.client
import json
import os
import ssl

from kubernetes import client

from apiserver_testlib import ADMIN_TOKEN

NODE_INFO_FIELDS = {"machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                    "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                    "operatingSystem", "architecture"}


def raw(server, method: str, path: str, body: dict,
        ctype: str = "application/json") -> tuple[int, dict]:
    """A request the Python client would refuse to send (it validates its input)."""
    ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    try:
        conn.request(method, path, json.dumps(body).encode(),
                     {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_python_client_lists_nodes_of_any_kubelet(server, core, namespace):
    sparse, bare = f"sparse-{namespace}", f"bare-{namespace}"
    # as a third-party kubelet might register: a partial nodeInfo, a null, no port
    code, node = raw(server, "POST", "/api/v1/nodes", {
        "metadata": {"name": sparse},
        "status": {"nodeInfo": {"kubeletVersion": "v1.37.0", "architecture": "amd64",
                                "kubeProxyVersion": None},
                   "daemonEndpoints": {"kubeletEndpoint": {}}}})
    assert code == 201
    try:
        assert raw(server, "POST", "/api/v1/nodes", {"metadata": {"name": bare}})[0] == 201
        info = node["status"]["nodeInfo"]
        assert set(info) == NODE_INFO_FIELDS
        assert info["kubeletVersion"] == "v1.37.0" and info["kubeProxyVersion"] == ""
        assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}

        code, _ = raw(server, "PATCH", f"/api/v1/nodes/{sparse}/status",
                      {"status": {"nodeInfo": {"osImage": None, "kernelVersion": "6.1.0"}}},
                      "application/merge-patch+json")
        assert code == 200

        nodes = {n.metadata.name: n for n in core.list_node().items}
        info = nodes[sparse].status.node_info
        assert (info.kube_proxy_version, info.os_image, info.kernel_version) == \
            ("", "", "6.1.0")
        assert nodes[bare].status.node_info.kubelet_version == ""
        assert nodes[bare].status.daemon_endpoints.kubelet_endpoint.port == 0
        assert core.read_node(sparse).status.node_info.architecture == "amd64"
    finally:
        for name in (sparse, bare):
            core.delete_node(name)


def test_empty_metadata_strings_are_omitted(server, core, namespace):
    # kubectl create sends these kinds as protobuf, with every ObjectMeta string
    server.kubectl("create", "configmap", "cm", "-n", namespace, "--from-literal=a=b")
    server.kubectl("create", "secret", "generic", "s", "-n", namespace, "--from-literal=a=b")
    ns2 = namespace + "-x"
    server.kubectl("create", "namespace", ns2)
    try:
        for kind, name, ns in (("configmap", "cm", namespace), ("secret", "s", namespace),
                               ("namespace", ns2, "")):
            args = ("get", kind, name, "-o", "json") + (("-n", ns) if ns else ())
            meta = json.loads(server.kubectl(*args).stdout)["metadata"]
            assert "generateName" not in meta, kind
            assert all(v not in ("", None, {}, []) for v in meta.values()), (kind, meta)
        assert core.read_namespaced_config_map("cm", namespace).metadata.generate_name is None
    finally:
        core.delete_namespace(ns2)
