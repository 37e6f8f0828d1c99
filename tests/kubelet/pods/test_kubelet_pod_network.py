"""What a pod sees of names and ports, end to end through the real API server and pykubelet:
the /etc/hosts, /etc/resolv.conf and hostname the kubelet writes (per dnsPolicy, dnsConfig,
hostAliases, hostname and subdomain), and a hostPort reachable from the host through the CNI
portmap plugin, its forwarding gone with the pod."""
from __future__ import annotations

import ipaddress
import subprocess
import urllib.error
import urllib.request

import pytest
from netns import nat

from kubelet_testlib import wait_for
from podsec_testlib import logs, run_to_end
from testlib.processes import free_port

pytestmark = pytest.mark.root

CLUSTER_DNS = "198.18.0.10"


@pytest.fixture(scope="module")
def dns_kubelet(api_server, nodes, image_root):
    from kubelet_testlib import KubeletProcess

    name, token = nodes.take()
    k = KubeletProcess(api_server, name, token, image_root,
                       {"clusterDNS": [CLUSTER_DNS], "clusterDomain": "cluster.local"},
                       portmap=True)
    try:
        k.start()
        yield k
    finally:
        k.cleanup()


def _host_resolv() -> tuple[list[str], list[str]]:
    nameservers, searches = [], []
    with open("/etc/resolv.conf") as f:
        for line in f:
            words = line.split()
            if words and words[0] == "nameserver":
                nameservers.append(words[1])
            elif words and words[0] == "search":
                searches = words[1:]
    return nameservers, searches


SHOW = "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; hostname; cat /etc/hostname"


def test_cluster_first_hosts_resolv_conf_and_hostname(api, dns_kubelet, namespace):
    pod = run_to_end(api, namespace, dns_kubelet.node, "named", SHOW,
                     hostname="web", subdomain="sub",
                     hostAliases=[{"ip": "198.18.9.9", "hostnames": ["foo.local", "bar"]}],
                     dnsConfig={"searches": ["extra.example"],
                                "options": [{"name": "ndots", "value": "2"},
                                            {"name": "edns0"}]})
    hosts, resolv, names = logs(api, namespace, "named").split("---\n")
    assert pod["status"]["phase"] == "Succeeded"
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    # the pod's own address, from this kubelet's pod subnet, under its full name
    own = [line.split("\t") for line in hosts.splitlines()
           if line.endswith(f"\tweb.sub.{namespace}.svc.cluster.local\tweb")]
    assert len(own) == 1
    assert ipaddress.ip_address(own[0][0]) in ipaddress.ip_network(dns_kubelet.subnet)
    assert hosts.endswith("# Entries added by HostAliases.\n198.18.9.9\tfoo.local\tbar\n")
    _, host_searches = _host_resolv()
    searches = [f"{namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local",
                *host_searches, "extra.example"]
    assert resolv == (f"search {' '.join(searches)}\nnameserver {CLUSTER_DNS}\n"
                      "options ndots:2 edns0\n")
    assert names == "web\nweb\n"


def test_default_and_none_dns_policies(api, dns_kubelet, namespace):
    run_to_end(api, namespace, dns_kubelet.node, "dflt", "cat /etc/resolv.conf",
               dnsPolicy="Default")
    run_to_end(api, namespace, dns_kubelet.node, "none", "cat /etc/resolv.conf",
               dnsPolicy="None", dnsConfig={"nameservers": ["198.18.0.53"],
                                            "searches": ["only.example"]})
    nameservers, _ = _host_resolv()
    dflt = logs(api, namespace, "dflt")
    assert [line.split()[1] for line in dflt.splitlines()
            if line.startswith("nameserver")] == nameservers[:3]
    assert logs(api, namespace, "none") == "search only.example\nnameserver 198.18.0.53\n"


def _nft_tables(network: str) -> set[str]:
    """The network's rule sets (masquerade, host ports): other sessions' come and go meanwhile."""
    prefixes = tuple(nat.network_prefix(kind, network) for kind in ("mq", "hp"))
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return {line for line in out.stdout.splitlines() if line.split()[-1].startswith(prefixes)}


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def test_host_port_is_reachable_from_the_host_until_the_pod_goes(api, dns_kubelet, namespace):
    port = free_port()
    before = _nft_tables(dns_kubelet.network)
    api.create_pod(namespace, {"metadata": {"name": "web"}, "spec": {
        "nodeName": dns_kubelet.node, "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never",
             "command": ["sh", "-c", "mkdir /www && echo hello-from-pod > /www/index.html && "
                         "exec httpd -f -p 8080 -h /www"],
             "ports": [{"containerPort": 8080, "hostPort": port}]}]}})
    wait_for(lambda: api.running(namespace, "web"), what="web running")
    url = f"http://127.0.0.1:{port}/"
    assert wait_for(lambda: _get(url), what=f"{url} answering") == "hello-from-pod\n"
    assert _nft_tables(dns_kubelet.network) - before, "the portmap plugin added its table"
    api.delete_pod(namespace, "web")
    wait_for(lambda: api.pod(namespace, "web") is None, what="web deleted")
    assert _get(url) is None
    assert _nft_tables(dns_kubelet.network) == before
