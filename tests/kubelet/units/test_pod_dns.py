"""The pod's /etc/hosts and resolv.conf as the kubelet writes them (pure text)."""
from kubelet.pods import Pod
from kubelet.sync import pod_dns


def _pod(**spec) -> Pod:
    return Pod({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec})


NODE = pod_dns.parse_resolv_conf("# comment\nnameserver 10.0.0.2\nsearch a.example .\n"
                                 "search b.example c.example\noptions rotate\n")


def test_node_resolv_conf_keeps_the_last_search_line():
    assert (NODE.nameservers, NODE.searches, NODE.options) == (
        ["10.0.0.2"], ["b.example", "c.example"], ["rotate"])


def test_cluster_first_falls_back_to_default_without_cluster_dns_or_on_the_host_network():
    cluster = pod_dns.pod_dns(_pod(), NODE, ["198.18.0.10"], "cluster.local")
    assert pod_dns.resolv_conf(cluster) == (
        "search ns.svc.cluster.local svc.cluster.local cluster.local b.example c.example\n"
        "nameserver 198.18.0.10\noptions ndots:5\n")
    assert pod_dns.pod_dns(_pod(), NODE, [], "cluster.local").nameservers == ["10.0.0.2"]
    host = pod_dns.pod_dns(_pod(hostNetwork=True), NODE, ["198.18.0.10"], "cluster.local")
    assert host.nameservers == ["10.0.0.2"]
    with_host_net = _pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert pod_dns.pod_dns(with_host_net, NODE, ["198.18.0.10"], "c.l").nameservers == \
        ["198.18.0.10"]


def test_dns_config_merges_and_limits():
    pod = _pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "ndots", "value": "3"}]})
    config = pod_dns.pod_dns(pod, NODE, [], "")
    assert config.nameservers == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    assert config.options == ["ndots:3"]


def test_hosts_file_names_the_pod_and_its_aliases():
    pod = _pod(hostname="h", subdomain="s", hostAliases=[{"ip": "10.1.1.1", "hostnames": ["x"]}])
    text = pod_dns.hosts_file(pod, ["198.18.0.5"], "cluster.local", "")
    assert "198.18.0.5\th.s.ns.svc.cluster.local\th\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n10.1.1.1\tx\n")
    host_net = pod_dns.hosts_file(_pod(hostNetwork=True), [], "", "127.0.0.1 node\n")
    assert host_net == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 node\n"
    long_name = Pod({"metadata": {"name": "a" * 62 + "-b" * 3, "namespace": "n"}, "spec": {}})
    assert pod_dns.hostname_and_domain(long_name, "")[0] == "a" * 62
