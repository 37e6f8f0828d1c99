"""pyapiserver and the real kube-apiserver (../shared/refbin, --storage-media-type=
application/json) on one etcd with the same prefix: each reads what the other wrote, because
pyapiserver keeps kube-apiserver's key layout and values."""
from __future__ import annotations

import json

import pytest

from apiserver_testlib import start_server, stop_server
from testlib.control_plane import ControlPlane

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# kube-apiserver's master endpoint reconciler would fight pyapiserver's over the `kubernetes`
# Endpoints (each writes its own address): only pyapiserver keeps them here.
KUBE_FLAGS = ("--storage-media-type", "application/json", "--endpoint-reconciler-type", "none")


@pytest.fixture(scope="module")
def plane():
    cp = ControlPlane("etcd-kube-node", KUBE_FLAGS)
    try:
        cp.start()
        server = start_server(["--etcd-servers", f"http://127.0.0.1:{cp.etcd_port}"])
    except BaseException:
        cp.cleanup()
        raise
    yield cp, server
    stop_server(server)
    cp.cleanup()


def _unchecked(server):
    """The server's kubectl returning failures, as ControlPlane.kubectl does."""
    return lambda *args, **kw: server.kubectl(*args, check=False, **kw)


def _apply(kubectl, manifest: dict) -> None:
    proc = kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert proc.returncode == 0, proc.stderr


def _get(kubectl, *what: str) -> dict:
    proc = kubectl("get", *what, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_kube_apiserver_reads_what_pyapiserver_wrote(plane):
    cp, server = plane
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-py",
                                                                "namespace": "default"},
         "data": {"a": "b"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "from-py", "namespace": "default"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "from-py"}},
                  "template": {"metadata": {"labels": {"app": "from-py"}},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "from-py-node",
                                                          "labels": {"made-by": "py"}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "from-py",
                                                             "namespace": "default"},
         "spec": {"selector": {"app": "from-py"}, "ports": [{"port": 80}]}},
    ]
    for obj in objects:
        _apply(_unchecked(server), obj)
    for obj, what in zip(objects, (("configmap", "from-py"), ("deployment", "from-py"),
                                   ("node", "from-py-node"), ("service", "from-py"))):
        ours = _get(lambda *a: server.kubectl(*a, "-n", "default"), *what)
        theirs = _get(lambda *a: cp.kubectl(*a, "-n", "default"), *what)
        assert theirs["metadata"]["uid"] == ours["metadata"]["uid"], what
        # One etcd: the same object at the same revision, whichever server answers.
        assert theirs["metadata"]["resourceVersion"] == ours["metadata"]["resourceVersion"]
    assert _get(cp.kubectl, "configmap", "from-py", "-n", "default")["data"] == {"a": "b"}
    assert _get(cp.kubectl, "deployment", "from-py", "-n", "default")["spec"]["replicas"] == 2
    assert _get(cp.kubectl, "node", "from-py-node")["metadata"]["labels"]["made-by"] == "py"
    svc = _get(cp.kubectl, "service", "from-py", "-n", "default")
    assert svc["spec"]["clusterIP"] == \
        _get(server.kubectl, "service", "from-py", "-n", "default")["spec"]["clusterIP"]


def test_pyapiserver_reads_what_kube_apiserver_wrote(plane):
    cp, server = plane
    _apply(cp.kubectl, {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "from-kube", "namespace": "default"},
                        "data": {"k": "v"}})
    _apply(cp.kubectl, {"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "from-kube", "namespace": "default"},
                        "spec": {"selector": {"matchLabels": {"app": "k"}},
                                 "template": {"metadata": {"labels": {"app": "k"}},
                                              "spec": {"containers": [{"name": "c",
                                                                       "image": "busybox"}]}}}})
    ours = _get(server.kubectl, "configmap", "from-kube", "-n", "default")
    assert ours["data"] == {"k": "v"}
    assert ours["metadata"]["uid"] == \
        _get(cp.kubectl, "configmap", "from-kube", "-n", "default")["metadata"]["uid"]
    assert _get(server.kubectl, "deployment", "from-kube", "-n",
                "default")["spec"]["template"]["metadata"]["labels"] == {"app": "k"}
    # kube-apiserver's own `kubernetes` Service, under its key, is the one pyapiserver serves.
    assert _get(server.kubectl, "service", "kubernetes", "-n", "default")["metadata"]["uid"] == \
        _get(cp.kubectl, "service", "kubernetes", "-n", "default")["metadata"]["uid"]


def test_node_ports_are_allocated_from_one_bitmap_with_kube_apiserver(plane):
    """Both keep NodePorts in /registry/ranges/servicenodeports: a port one server handed out,
    the other refuses. (kube-apiserver 1.35 keeps ClusterIPs as IPAddress objects instead.)"""
    cp, server = plane

    def service(name: str, node_port: int) -> dict:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "NodePort", "selector": {"app": name},
                         "ports": [{"port": 80, "nodePort": node_port}]}}

    ours = _unchecked(server)
    for maker, refuser, port in ((ours, cp.kubectl, 30555), (cp.kubectl, ours, 30556)):
        made = maker("create", "-f", "-", input=json.dumps(service(f"made-{port}", port)))
        assert made.returncode == 0, made.stderr
        refused = refuser("create", "-f", "-", input=json.dumps(service(f"again-{port}", port)))
        assert refused.returncode != 0
        assert "provided port is already allocated" in refused.stderr
