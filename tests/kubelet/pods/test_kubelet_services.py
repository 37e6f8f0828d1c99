"""Services end to end on one real node (services_testlib.ServiceNode): real kubectl, a
3-replica Deployment of busybox httpd pods that each answer their own name, the EndpointSlice
controller, pykube-proxy's nftables rules and pykube-dns behind the kube-dns Service, reached
from pods by the search path the kubelet writes. Pod answers are fetched with busybox wget and
nslookup through `kubectl exec` in a client pod."""
from __future__ import annotations

import difflib
import http.client
import json
import re
import subprocess
from collections import Counter

import pytest

from kubelet_testlib import IMAGE, wait_for
from services_testlib import ServiceNode

pytestmark = [pytest.mark.root, pytest.mark.slow]

NS = "web-e2e"
PORT = 8080          # the pods' port, the Services' targetPort (their port is 80)
# Serves its own name on PORT and stops serving at once on SIGTERM (PID 1 ignores signals it
# has no handler for): the preStop hook before it is what lets the proxy stop choosing the pod.
SERVE = ("mkdir -p /tmp/www && hostname > /tmp/www/index.html && "
         "httpd -f -p 8080 -h /tmp/www & trap 'kill $!; exit 0' TERM; wait")
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"


@pytest.fixture(scope="module")
def node(image_root):
    n = ServiceNode(image_root)
    try:
        n.start()
        n.kubectl("create", "namespace", NS)
        n.apply(deployment(n.node_name), NS)
        n.apply(service("web", {"app": "web"}), NS)
        n.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
                 "spec": {"nodeName": n.node_name, "terminationGracePeriodSeconds": 2,
                          "containers": [{"name": "c", "image": IMAGE,
                                          "command": ["sh", "-c", IDLE]}]}}, NS)
        n.kubectl("rollout", "status", "-n", NS, "deployment/web", "--timeout=120s",
                  timeout=130)
        n.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod/client", "--timeout=60s",
                  timeout=70)
        wait_for(lambda: len(serving(n, "web")) == 3, timeout=30, what="3 endpoints of web")
        wait_for(lambda: answered(fetch(n, "http://web", 1)), timeout=30,
                 what="web programmed and named")
        yield n
    finally:
        try:
            if n.api is not None:
                n.kubectl("delete", "namespace", NS, "--wait=false", check=False)
                wait_for(lambda: not n.api.pods(NS), timeout=90, what="the pods gone")
                wait_for(lambda: not n.volume_mounts(), timeout=30,
                         what=lambda: f"the pods' volumes unmounted: {n.volume_mounts()}")
        finally:
            n.cleanup()


def deployment(node_name: str) -> dict:
    probe = {"httpGet": {"path": "/", "port": PORT}, "periodSeconds": 1}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "nodeSelector": {"kubernetes.io/hostname": node_name},
                         "terminationGracePeriodSeconds": 10,
                         "containers": [{
                             "name": "httpd", "image": IMAGE, "command": ["sh", "-c", SERVE],
                             "ports": [{"name": "http", "containerPort": PORT}],
                             "readinessProbe": probe,
                             "lifecycle": {"preStop": {"exec": {
                                 "command": ["sleep", "3"]}}}}]}}}}


def service(name: str, selector: dict, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, **spec,
                     "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}}


def serving(n: ServiceNode, service_name: str) -> list[str]:
    """The ready addresses of the Service's EndpointSlices."""
    slices = n.api.client.get(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
                              {"labelSelector": f"kubernetes.io/service-name={service_name}"})
    return [a for s in slices["items"] for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready") for a in e["addresses"]]


def web_pods(n: ServiceNode) -> list[str]:
    return sorted(p["metadata"]["name"] for p in n.api.pods(NS)
                  if p["metadata"].get("labels", {}).get("app") == "web"
                  and not p["metadata"].get("deletionTimestamp"))


def in_pod(n: ServiceNode, pod: str, script: str, timeout: float = 120
           ) -> subprocess.CompletedProcess:
    return n.kubectl("exec", "-n", NS, pod, "--", "sh", "-c", script, timeout=timeout,
                     check=False)


def fetch(n: ServiceNode, url: str, count: int, pod: str = "client") -> list[str]:
    """`count` answers of `url` from the pod, each a new connection; ERR for a failure."""
    # busybox 1.35's wget -T crashes: timeout bounds it instead.
    out = in_pod(n, pod, f"for i in $(seq {count}); do r=$(timeout 5 wget -q -O - {url} 2>&1) "
                         '&& echo "$r" || echo "ERR $r" | head -1; done')
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def cluster_ip(n: ServiceNode, name: str) -> str:
    return json.loads(n.kubectl("get", "service", "-n", NS, name, "-o", "json").stdout
                      )["spec"]["clusterIP"]


def programmed(n: ServiceNode, ip: str) -> bool:
    """The proxy's table holds the ClusterIP (its first sync of the Service is done)."""
    return ip in n.nft_table()


def answered(answers: list[str]) -> bool:
    return not any(a.startswith("ERR") for a in answers)


def test_cluster_ip_by_name_spreads_over_every_backend(node):
    answers = fetch(node, "http://web", 300)
    counts = Counter(answers)
    assert set(counts) == set(web_pods(node)), counts
    assert all(0.20 <= c / 300 <= 0.47 for c in counts.values()), counts


def test_node_port_answers_on_the_node_address_from_the_host(node):
    node.kubectl("expose", "-n", NS, "deployment/web", "--name", "web-np", "--type",
                 "NodePort", "--port", "80", "--target-port", str(PORT))
    port = json.loads(node.kubectl("get", "service", "-n", NS, "web-np", "-o", "json").stdout
                      )["spec"]["ports"][0]["nodePort"]

    def get() -> str:
        conn = http.client.HTTPConnection(node.node_ip, port, timeout=5)
        try:
            conn.request("GET", "/")
            return conn.getresponse().read().decode().strip()
        except OSError:
            return ""
        finally:
            conn.close()

    answer = wait_for(get, timeout=30, what=f"an answer on {node.node_ip}:{port}")
    assert answer in web_pods(node)


def test_a_pod_reaches_itself_through_its_service(node):
    pod = web_pods(node)[0]
    node.kubectl("label", "pod", "-n", NS, pod, "hairpin=yes")
    node.apply(service("self", {"app": "web", "hairpin": "yes"}), NS)
    wait_for(lambda: len(serving(node, "self")) == 1, timeout=30, what="self's endpoint")
    wait_for(lambda: fetch(node, "http://self", 1, pod=pod) == [pod], timeout=30,
             what=f"{pod} answering itself through self")
    assert fetch(node, "http://self", 5, pod=pod) == [pod] * 5


def test_client_ip_affinity_pins_one_backend(node):
    node.apply(service("sticky", {"app": "web"}, sessionAffinity="ClientIP"), NS)
    wait_for(lambda: len(serving(node, "sticky")) == 3, timeout=30, what="sticky's endpoints")
    wait_for(lambda: answered(fetch(node, "http://sticky", 1)), timeout=30,
             what="sticky programmed")
    answers = fetch(node, "http://sticky", 30)
    assert len(set(answers)) == 1 and answers[0] in web_pods(node), Counter(answers)


def test_a_service_without_endpoints_refuses_connections(node):
    node.apply(service("empty", {"app": "nothing"}), NS)
    ip = cluster_ip(node, "empty")
    wait_for(lambda: programmed(node, ip), timeout=30, what="empty's reject rule")
    out = in_pod(node, "client", "timeout 20 wget -q -O - http://empty")
    assert out.returncode != 0
    assert f"can't connect to remote host ({ip}): Connection refused" in out.stderr, out.stderr


def rules(n: ServiceNode) -> list[str]:
    """The proxy's table, line by line, without the affinity entries' running clocks."""
    return re.sub(r" expires [0-9hms]+", "", n.nft_table()).splitlines()


def test_deleting_a_service_removes_every_rule_it_had(node):
    before = rules(node)
    node.apply(service("gone", {"app": "web"}), NS)
    ip = cluster_ip(node, "gone")
    wait_for(lambda: programmed(node, ip) and f"{NS}/gone/" in node.nft_table(), timeout=30,
             what="gone's rules")
    node.kubectl("delete", "service", "-n", NS, "gone")
    wait_for(lambda: rules(node) == before, timeout=30, what=lambda: "the table as before: " +
             "\n".join(difflib.unified_diff(before, rules(node), lineterm="")))


def nslookup(n: ServiceNode, name: str, *options: str) -> subprocess.CompletedProcess:
    return in_pod(n, "client", " ".join(["nslookup", *options, name]), timeout=30)


def test_dns_from_a_pod_names_services_pods_and_the_world(node):
    ip = cluster_ip(node, "web")
    fqdn = f"web.{NS}.svc.cluster.local"
    resolv = in_pod(node, "client", "cat /etc/resolv.conf").stdout.splitlines()
    assert f"search {NS}.svc.cluster.local svc.cluster.local cluster.local" in " ".join(
        line for line in resolv if line.startswith("search")), resolv
    assert f"nameserver {node.dns_ip}" in resolv and "options ndots:5" in resolv, resolv
    # busybox nslookup applies the search path to a name without dots only (asking every
    # domain of it: exit 1 for the two NXDOMAINs); glibc's resolver (wget) to web.<ns> too
    # (ndots:5 of the resolv.conf the kubelet writes).
    for name in ("web", fqdn):
        assert f"Name:\t{fqdn}\nAddress: {ip}" in nslookup(node, name).stdout
    assert fetch(node, f"http://web.{NS}", 1)[0] in web_pods(node)
    out = nslookup(node, f"_http._tcp.{fqdn}", "-type=srv")
    assert f"service = 0 100 80 {fqdn}" in out.stdout, out
    out = nslookup(node, ip)
    assert f"name = {fqdn}" in out.stdout, out
    out = nslookup(node, f"nothere.{NS}.svc.cluster.local")
    assert out.returncode != 0 and "NXDOMAIN" in out.stdout, out

    node.apply(service("web-hl", {"app": "web"}, clusterIP="None"), NS)
    pod_ips = sorted(p["status"]["podIP"] for p in node.api.pods(NS)
                     if p["metadata"]["name"] in web_pods(node))

    def headless() -> list[str]:
        out = nslookup(node, f"web-hl.{NS}.svc.cluster.local").stdout
        return sorted(line.split()[1] for line in out.splitlines()
                      if line.startswith("Address: "))

    wait_for(lambda: headless() == pod_ips, timeout=30,
             what=lambda: f"web-hl answering {pod_ips}: {headless()}")
    out = nslookup(node, "external.example")
    assert out.returncode == 0 and "Address: 198.18.200.1" in out.stdout, out
    assert node.upstream.count("external.example.") >= 1


def test_pods_find_services_in_their_environment(node):
    ip = cluster_ip(node, "web")
    api_ip = node.api.get("/api/v1/namespaces/default/services/kubernetes")["spec"]["clusterIP"]
    for name, links in (("links", True), ("no-links", False)):
        node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"nodeName": node.node_name, "terminationGracePeriodSeconds": 1,
                             "enableServiceLinks": links, "containers": [
                                 {"name": "c", "image": IMAGE, "command": ["sh", "-c", IDLE]}]}},
                   NS)
    try:
        envs = {}
        for name in ("links", "no-links"):
            node.kubectl("wait", "-n", NS, "--for=condition=Ready", f"pod/{name}",
                         "--timeout=60s", timeout=70)
            out = in_pod(node, name, "env")
            envs[name] = dict(line.split("=", 1) for line in out.stdout.splitlines()
                              if "=" in line)
        for env in envs.values():
            assert env["KUBERNETES_SERVICE_HOST"] == api_ip
            assert env["KUBERNETES_PORT_443_TCP"] == f"tcp://{api_ip}:443"
        assert envs["links"]["WEB_SERVICE_HOST"] == ip
        assert envs["links"]["WEB_SERVICE_PORT_HTTP"] == "80"
        assert envs["links"]["WEB_PORT"] == f"tcp://{ip}:80"
        assert not any(k.startswith("WEB_") for k in envs["no-links"])
    finally:
        node.kubectl("delete", "pod", "-n", NS, "links", "no-links", "--wait=false")


def refusal(n: ServiceNode, *args: str) -> str:
    out = n.kubectl("create", "service", "-n", NS, *args, check=False)
    assert out.returncode != 0, out.stdout
    return out.stderr.strip()


def test_refused_services_name_the_field_like_kube_apiserver(node):
    taken = cluster_ip(node, "web")
    assert refusal(node, "clusterip", "dup", "--tcp=80", f"--clusterip={taken}").endswith(
        f'Service "dup" is invalid: spec.clusterIPs: Invalid value: ["{taken}"]: failed to '
        f"allocate IP {taken}: provided IP is already allocated")
    outside = node.node_ip
    assert refusal(node, "clusterip", "out", "--tcp=80", f"--clusterip={outside}").endswith(
        f'Service "out" is invalid: spec.clusterIPs: Invalid value: ["{outside}"]: failed to '
        f"allocate IP {outside}: provided IP is not in the valid range. The range of valid "
        f"IPs is {node.service_subnet}")
    node.kubectl("create", "service", "-n", NS, "nodeport", "np1", "--tcp=80",
                 "--node-port=30080")
    assert refusal(node, "nodeport", "np2", "--tcp=80", "--node-port=30080").endswith(
        'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided '
        "port is already allocated")
    assert refusal(node, "nodeport", "np3", "--tcp=80", "--node-port=40000").endswith(
        'Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided '
        "port is not in the valid range. The range of valid ports is 30000-32767")
    names = node.kubectl("get", "services", "-n", NS, "-o", "name").stdout.split()
    assert not {"service/dup", "service/out", "service/np2", "service/np3"} & set(names)


def test_a_rolling_update_with_readiness_and_pre_stop_drops_no_request(node):
    old = set(web_pods(node))
    # Fetches until /tmp/stop exists; one line per failed request, a count at the end.
    loop = subprocess.Popen(
        [*node.kubectl_argv(), "exec", "-n", NS, "client", "--", "sh", "-c",
         "rm -f /tmp/stop; n=0; while [ ! -e /tmp/stop ]; do n=$((n+1)); "
         'r=$(timeout 5 wget -q -O - http://web 2>&1) || echo "ERR $r" | head -1; done; '
         "echo total $n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        node.kubectl("rollout", "restart", "-n", NS, "deployment/web")
        node.kubectl("rollout", "status", "-n", NS, "deployment/web", "--timeout=120s",
                     timeout=130)
        # Until the last old pod has ended (preStop, then SIGTERM): its endpoint goes last.
        wait_for(lambda: not old & {p["metadata"]["name"] for p in node.api.pods(NS)},
                 timeout=60, what="the old pods gone")
    finally:
        in_pod(node, "client", "touch /tmp/stop")
        out, err = loop.communicate(timeout=30)
    lines = out.splitlines()
    assert loop.returncode == 0, err
    assert not [line for line in lines if line.startswith("ERR")], out
    assert lines[-1].startswith("total ") and int(lines[-1].split()[1]) > 0, out
    assert not old & set(web_pods(node))
