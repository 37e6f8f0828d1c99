"""pykubelet as a node of a real cluster (issue 25): the control plane of refbin with three
pykubelet nodes, each in its own network namespace on a bridge underlay. The tests run in
order on one cluster (module scope): a node is stopped after the tests that use its pods, and
a fourth node joins (bootstrap token, certificate rotation, serving certificate) at the end."""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster_testlib import Cluster
from testlib.images import IMAGE
from testlib.waiting import wait_for

pytestmark = pytest.mark.slow

NAMESPACE = "spread"
APP = {"app": "web"}


def _items(cluster: Cluster, path: str) -> list[dict]:
    return cluster.client.get(path).get("items") or []


def _web_pods(cluster: Cluster) -> list[dict]:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3Dweb"
    return [p for p in _items(cluster, path)
            if not p["metadata"].get("deletionTimestamp")]


def _running(pods: list[dict]) -> list[dict]:
    return [p for p in pods if p["status"].get("phase") == "Running"
            and p["status"].get("podIP")
            and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]


def _deployment() -> dict:
    # Short NoExecute tolerations: the pods of a stopped node move in seconds, not 5 minutes.
    tolerations = [{"key": key, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 2}
                   for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"replicas": 6, "selector": {"matchLabels": APP}, "template": {
            "metadata": {"labels": APP},
            "spec": {"terminationGracePeriodSeconds": 1, "tolerations": tolerations,
                     "topologySpreadConstraints": [{
                         "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "DoNotSchedule",
                         "nodeTaintsPolicy": "Honor",
                         "labelSelector": {"matchLabels": APP}}],
                     "containers": [{
                         "name": "web", "image": IMAGE, "imagePullPolicy": "Never",
                         "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html"
                                     " && echo serving && exec httpd -f -p 8080 -h /www"],
                         "readinessProbe": {"tcpSocket": {"port": 8080},
                                            "periodSeconds": 1}}]}}}}


def test_nodes_register_ready_with_pod_cidrs(cluster: Cluster) -> None:
    for node in cluster.nodes:
        wait_for(lambda: cluster.node_ready(node.name) == "True", 90, interval=0.5,
                 what=lambda: f"{node.name} Ready: {node.log()[-2000:]}")
    def tainted() -> list[str]:
        return [n["metadata"]["name"] for n in _items(cluster, "/api/v1/nodes")
                if any(t["key"] == "node.kubernetes.io/not-ready"
                       for t in n["spec"].get("taints") or [])]

    # the node lifecycle controller lifts the not-ready taints of Ready nodes
    wait_for(lambda: not tainted(), 30, interval=0.5, what=lambda: f"untainted: {tainted()}")
    nodes = {n["metadata"]["name"]: n for n in _items(cluster, "/api/v1/nodes")}
    for node in cluster.nodes:
        spec, status = nodes[node.name]["spec"], nodes[node.name]["status"]
        assert spec["podCIDR"].startswith("198.19.")
        assert {"type": "InternalIP", "address": node.ip} in status["addresses"]


def test_node_events_as_the_kubelet_posts_them(cluster: Cluster) -> None:
    node = cluster.nodes[0]

    def reasons() -> set[str]:
        events = _items(cluster, "/api/v1/namespaces/default/events?fieldSelector="
                        f"involvedObject.name%3D{node.name}")
        return {e["reason"] for e in events if e["source"].get("component") == "kubelet"}

    wanted = {"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure",
              "NodeHasSufficientPID", "NodeAllocatableEnforced", "NodeReady"}
    wait_for(lambda: wanted <= reasons(), 60, interval=0.5,
             what=lambda: f"node events {sorted(reasons())}")


def test_deployment_spreads_over_the_three_nodes(cluster: Cluster) -> None:
    assert cluster.kubectl("create", "namespace", NAMESPACE).returncode == 0
    done = cluster.kubectl("apply", "-f", "-", input=json.dumps(_deployment()))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: len(_running(_web_pods(cluster))) == 6, 120, interval=1,
             what=lambda: "6 running pods: " + cluster.kubectl(
                 "get", "pods", "-n", NAMESPACE, "-o", "wide").stdout
             + cluster.nodes[0].log()[-3000:])
    by_node = {p["spec"]["nodeName"] for p in _running(_web_pods(cluster))}
    assert by_node == {n.name for n in cluster.nodes}
    status = cluster.client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web")
    wait_for(lambda: cluster.client.get(
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web")["status"].get(
            "availableReplicas") == 6, 60, interval=0.5, what=lambda: f"available: {status}")


def _pod_on(cluster: Cluster, node: str) -> dict:
    return next(p for p in _running(_web_pods(cluster)) if p["spec"]["nodeName"] == node)


def test_pod_to_pod_across_nodes_and_exec_through_the_api_server(cluster: Cluster) -> None:
    a, c = cluster.nodes[0].name, cluster.nodes[2].name
    source, target = _pod_on(cluster, a), _pod_on(cluster, c)
    done = cluster.kubectl("exec", "-n", NAMESPACE, source["metadata"]["name"], "--",
                           # busybox's wget -T crashes (SIGSEGV): timeout bounds it instead
                           "timeout", "10", "wget", "-qO-",
                           f"http://{target['status']['podIP']}:8080/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == target["metadata"]["name"]


def test_logs_through_the_api_server(cluster: Cluster) -> None:
    pod = _pod_on(cluster, cluster.nodes[1].name)
    done = cluster.kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "serving\n"


def test_a_pod_lists_its_namespace_with_its_own_token(cluster: Cluster) -> None:
    """The pod's projected token (a TokenRequest of its kubelet) with an RBAC Role to list
    pods. The pod reaches the API server's host address (pycni-hostgw's masquerade), but the
    call is made from the test with the token read from the pod: busybox's wget completes a
    TLS handshake with kube-apiserver only now and then (mostly alert 40, handshake failure)."""
    rbac = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "pod-reader", "namespace": NAMESPACE},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "pod-reader", "namespace": NAMESPACE},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "pod-reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "default",
                           "namespace": NAMESPACE}]}]
    done = cluster.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": rbac}))
    assert done.returncode == 0, done.stderr
    pod = _pod_on(cluster, cluster.nodes[1].name)
    # plain HTTP to the TLS port: Go's "400 Bad Request" proves the way there and back
    reach = cluster.kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "timeout",
                            "10", "wget", "-qO-", f"http://{cluster.host_ip}:{cluster.port}/")
    assert "400 Bad Request" in reach.stderr, reach.stderr
    read = cluster.kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "cat",
                           "/var/run/secrets/kubernetes.io/serviceaccount/token",
                           "/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    assert read.returncode == 0, read.stderr
    token, namespace = read.stdout[:-len(NAMESPACE)], read.stdout[-len(NAMESPACE):]
    assert namespace == NAMESPACE
    context = ssl.create_default_context(cafile=cluster.pki.ca_cert)
    request = urllib.request.Request(f"{cluster.url}/api/v1/namespaces/{NAMESPACE}/pods",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=30) as resp:
        listed = json.load(resp)
    assert pod["metadata"]["name"] in {p["metadata"]["name"] for p in listed["items"]}
    # the same token may not list another namespace's pods
    other = urllib.request.Request(f"{cluster.url}/api/v1/namespaces/default/pods",
                                   headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(other, context=context, timeout=30)
    assert refused.value.code == 403


def test_a_stopped_node_goes_not_ready_and_its_pods_move(cluster: Cluster) -> None:
    stopped = cluster.nodes[2]
    assert [p for p in _running(_web_pods(cluster)) if p["spec"]["nodeName"] == stopped.name]
    stopped.stop_kubelet()
    wait_for(lambda: cluster.node_ready(stopped.name) == "Unknown", 90, interval=1,
             what=lambda: f"{stopped.name} NotReady")
    survivors = {n.name for n in cluster.nodes[:2]}

    def moved() -> bool:
        pods = _running(_web_pods(cluster))
        return len(pods) == 6 and {p["spec"]["nodeName"] for p in pods} <= survivors

    wait_for(moved, 120, interval=1, what=lambda: "pods moved: " + cluster.kubectl(
        "get", "pods", "-n", NAMESPACE, "-o", "wide").stdout)


CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def _issued(cluster: Cluster, username: str) -> list[dict]:
    return [c for c in _items(cluster, CSRS) if c["spec"].get("username") == username
            and c.get("status", {}).get("certificate")
            and any(k["type"] == "Approved" for k in c["status"].get("conditions") or [])]


def _client_certificate(node) -> x509.Certificate:
    with open(os.path.join(node.root, "pki", "kubelet-client-current.pem"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def test_a_fourth_node_joins_with_a_bootstrap_token(cluster: Cluster) -> None:
    token = cluster.bootstrap_token()
    node = cluster.add_node("node-d", bootstrap_token=token)
    cluster.wait_pod_cidr(node)
    wait_for(lambda: cluster.node_ready(node.name) == "True", 90, interval=0.5,
             what=lambda: f"{node.name} Ready: {node.log()[-2000:]}")
    csr = _issued(cluster, f"system:bootstrap:{token.split('.')[0]}")
    assert len(csr) == 1
    assert csr[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert "system:bootstrappers:kubeadm:default-node-token" in csr[0]["spec"]["groups"]
    cert = _client_certificate(node)
    assert cert.subject.rfc4514_string() == "CN=system:node:node-d,O=system:nodes"


def test_the_joined_node_rotates_its_client_certificate(cluster: Cluster) -> None:
    """A certificate past its rotation point (signed by the cluster CA, as the controller
    manager would, with one minute to live) is renewed with itself at the kubelet's start."""
    from kubelet.bootstrap import CertFiles

    node = cluster.nodes[3]
    node.stop_kubelet()
    with open(cluster.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(cluster.pki.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    old = (x509.CertificateBuilder()
           .subject_name(x509.Name([
               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
               x509.NameAttribute(NameOID.COMMON_NAME, "system:node:node-d")]))
           .issuer_name(ca.subject).public_key(key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(minutes=9))
           .not_valid_after(now + datetime.timedelta(minutes=1))
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                          critical=False)
           .sign(ca_key, hashes.SHA256()))
    CertFiles(os.path.join(node.root, "pki")).store(
        old.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption()))
    node.start_kubelet()
    wait_for(lambda: _issued(cluster, "system:node:node-d"), 60, interval=0.5,
             what=lambda: f"a renewal CSR of node-d: {node.log()[-2000:]}")
    wait_for(lambda: _client_certificate(node).not_valid_after_utc > old.not_valid_after_utc,
             60, interval=0.5, what="the renewed certificate in place")
    assert _client_certificate(node).subject == old.subject
    wait_for(lambda: cluster.node_ready(node.name) == "True", 60, interval=0.5,
             what=lambda: f"{node.name} Ready: {node.log()[-2000:]}")


def test_the_joined_node_serves_the_certificate_it_requested_once_approved(cluster: Cluster
                                                                          ) -> None:
    """kube-controller-manager signs kubelet-serving requests but never approves them: an
    administrator does (kubectl certificate approve). Until then the kubelet serves its
    self-signed certificate; then the cluster CA's, naming its IP."""
    node = cluster.nodes[3]

    def pending() -> list[str]:
        return [c["metadata"]["name"] for c in _items(cluster, CSRS)
                if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                and c["spec"].get("username") == "system:node:node-d"
                and not (c.get("status") or {}).get("conditions")]

    names = wait_for(pending, 60, interval=0.5,
                     what=lambda: f"a kubelet-serving CSR of node-d: {node.log()[-2000:]}")
    approved = cluster.kubectl("certificate", "approve", *names)
    assert approved.returncode == 0, approved.stderr
    context = ssl.create_default_context(cafile=cluster.pki.ca_cert)

    def verified() -> x509.Certificate | None:
        try:
            with socket.create_connection((node.ip, 10250), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname=node.ip) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        except ssl.SSLCertVerificationError:
            return None

    cert = wait_for(verified, 60, interval=0.5, what="the CA-signed serving certificate")
    assert cert.subject.rfc4514_string() == "CN=system:node:node-d,O=system:nodes"
