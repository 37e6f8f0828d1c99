"""pykubelets on two pyapiservers that share one 3-member etcd (issue 25): each node registers
through a different server, pycontroller-manager runs against the first, and whichever
server holds kube-scheduler's Lease schedules. A Deployment made through the first runs on
both nodes, as the second server's watch shows, and goes when deleted."""
from __future__ import annotations

import contextlib
import os
import sys
import uuid

import pytest

from kubelet_testlib import KubeletProcess, running_controller_manager, wait_for
from testlib.images import IMAGE
from testlib.pyapiserver import Server, stop_server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "apiserver"))
from etcd_testlib import server_on, start_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def plane(tmp_path_factory, nodes, image_root):
    """(first server, second server, [kubelet of the first, kubelet of the second])."""
    with contextlib.ExitStack() as stack:
        cluster = start_cluster(3)
        stack.callback(cluster.stop)
        data_dir = str(tmp_path_factory.mktemp("pyapiserver-etcd"))
        token_file = os.path.join(data_dir, "tokens.csv")
        with open(token_file, "w") as f:
            f.write(nodes.token_lines())
        first = Server(data_dir, token_file, ("--etcd-servers", cluster.servers))
        first.start()
        stack.callback(first.stop)
        second = server_on(cluster, pki_from=first)
        stack.callback(stop_server, second)
        stack.enter_context(running_controller_manager(first, data_dir))
        kubelets = []
        for server in (first, second):
            kubelet = KubeletProcess(server, *nodes.take(), image_root)
            stack.callback(kubelet.cleanup)
            kubelet.start()
            kubelets.append(kubelet)
        yield first, second, kubelets


def node_ready(core, name: str) -> bool:
    """Whether the node is Ready; a kubelet that is serving may not have registered yet."""
    from kubernetes.client.exceptions import NotFoundException
    try:
        conditions = core.read_node(name).status.conditions or []
    except NotFoundException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_a_deployment_through_one_server_runs_on_nodes_of_both(plane):
    from kubernetes import client, watch
    first, second, kubelets = plane
    clients = [first.client(), second.client()]
    try:
        core_a, core_b = (client.CoreV1Api(c) for c in clients)
        for kubelet in kubelets:
            wait_for(lambda: node_ready(core_b, kubelet.node), 60, interval=0.5,
                     what=lambda: f"{kubelet.node} Ready: {kubelet.log()}")
        ns = "spread-" + uuid.uuid4().hex[:6]
        core_a.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        wait_for(lambda: core_a.list_namespaced_service_account(
            ns, field_selector="metadata.name=default").items, 30)
        labels = {"app": "spread"}
        client.AppsV1Api(clients[0]).create_namespaced_deployment(ns, {
            "metadata": {"name": "spread"},
            "spec": {"replicas": 4, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"]}]}}}})
        running: dict[str, str] = {}
        for ev in watch.Watch().stream(core_b.list_namespaced_pod, ns, timeout_seconds=150):
            pod = ev["object"]
            if ev["type"] != "DELETED" and pod.status.phase == "Running":
                running[pod.metadata.name] = pod.spec.node_name
            if len(running) == 4:
                break
        assert len(running) == 4, running
        assert sorted(set(running.values())) == sorted(k.node for k in kubelets)
        client.AppsV1Api(clients[0]).delete_namespaced_deployment("spread", ns)
        wait_for(lambda: not core_b.list_namespaced_pod(ns).items, 90, interval=0.5,
                 what="the Deployment's pods gone")
        core_a.delete_namespace(ns)
    finally:
        for c in clients:
            c.close()
