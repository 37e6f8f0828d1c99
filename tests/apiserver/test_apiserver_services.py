"""v1 Services, Endpoints and discovery.k8s.io/v1 EndpointSlices in the real pyapiserver: kube's
defaults and validation texts, ClusterIP and NodePort allocation (taken, out of range, released
on delete, never twice across a restart), the kubernetes Service, and kubectl (create service,
expose, get, describe, explain) and the official Python client reading them."""
from __future__ import annotations

import json
import uuid

import pytest

from apiserver_testlib import start_server, stop_server

RANGE = "198.18.0.0/24"
NODE_PORTS = "30000-30099"
FLAGS = ["--service-cluster-ip-range", RANGE, "--service-node-port-range", NODE_PORTS]


@pytest.fixture(scope="module")
def svc_server():
    """A server of this module's own, with the service ranges the tests name."""
    s = start_server(FLAGS)
    yield s
    stop_server(s)


@pytest.fixture
def core(svc_server):
    from kubernetes import client
    api = svc_server.client()
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def ns(svc_server, core):
    from kubernetes import client
    name = "s-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def kubectl(server, ns, *args, check=True):
    return server.kubectl("-n", ns, *args, check=check)


def create_svc(server, ns, name, check=True, **spec):
    """kubectl create -f of a Service (for what kubectl create service has no flag for)."""
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec}}
    return server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(body), check=check)


def error_of(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def get_json(server, ns, *args) -> dict:
    return json.loads(kubectl(server, ns, "get", *args, "-o", "json").stdout)


def test_kubernetes_service_points_at_the_server(svc_server, core):
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "198.18.0.1" and svc.spec.ports[0].port == 443
    assert svc.spec.ports[0].target_port == svc_server.port
    assert svc.metadata.labels == {"component": "apiserver", "provider": "kubernetes"}
    ep = core.read_namespaced_endpoints("kubernetes", "default")
    assert ep.subsets[0].addresses[0].ip == "127.0.0.1"
    assert ep.subsets[0].ports[0].port == svc_server.port
    from kubernetes import client
    discovery = client.DiscoveryV1Api(core.api_client)
    es = discovery.read_namespaced_endpoint_slice("kubernetes", "default")
    assert es.address_type == "IPv4" and es.endpoints[0].addresses == ["127.0.0.1"]
    assert es.metadata.labels["kubernetes.io/service-name"] == "kubernetes"


def test_serving_certificate_names_the_service(svc_server):
    import ipaddress
    import ssl
    from cryptography import x509
    pem = ssl.get_server_certificate(("127.0.0.1", svc_server.port))
    sans = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("198.18.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)


def test_kubectl_create_each_type_and_get(svc_server, ns):
    k = lambda *a: kubectl(svc_server, ns, *a)  # noqa: E731
    k("create", "service", "clusterip", "web", "--tcp=80:8080")
    k("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
    k("create", "service", "loadbalancer", "lb", "--tcp=443:8443")
    k("create", "service", "externalname", "ext", "--external-name=example.com")
    k("create", "service", "clusterip", "hl", "--clusterip=None")
    rows = {line.split()[0]: line.split() for line in
            k("get", "svc", "-o", "wide").stdout.strip().splitlines()}
    assert rows["NAME"] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
                            "SELECTOR"]
    web, np, lb = rows["web"], rows["np"], rows["lb"]
    assert web[1] == "ClusterIP" and web[2].startswith("198.18.0.") and web[3:5] == \
        ["<none>", "80/TCP"] and web[6] == "app=web"
    assert np[1] == "NodePort" and np[4] == "80:30080/TCP"
    assert lb[1] == "LoadBalancer" and lb[3] == "<pending>"
    assert lb[4].startswith("443:") and 30000 <= int(lb[4][4:].split("/")[0]) <= 30099
    assert rows["ext"][1:5] == ["ExternalName", "<none>", "example.com", "<none>"]
    assert rows["hl"][1:5] == ["ClusterIP", "None", "<none>", "<none>"]
    svc = get_json(svc_server, ns, "svc", "np")
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert svc["spec"]["internalTrafficPolicy"] == "Cluster"
    assert svc["spec"]["ipFamilies"] == ["IPv4"] and svc["spec"]["ipFamilyPolicy"] == \
        "SingleStack"
    assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
    assert svc["status"] == {"loadBalancer": {}}
    assert get_json(svc_server, ns, "svc", "lb")["spec"]["allocateLoadBalancerNodePorts"]
    hl = get_json(svc_server, ns, "svc", "hl")["spec"]
    assert hl["ipFamilyPolicy"] == "SingleStack" and hl["ipFamilies"] == ["IPv4"]
    create_svc(svc_server, ns, "bare", clusterIP="None")
    bare = get_json(svc_server, ns, "svc", "bare")["spec"]
    assert bare["ipFamilyPolicy"] == "RequireDualStack"
    assert bare["ipFamilies"] == ["IPv4", "IPv6"]
    ext = get_json(svc_server, ns, "svc", "ext")["spec"]
    assert "clusterIP" not in ext and "ipFamilies" not in ext


def test_kubectl_expose_pod_and_deployment(svc_server, ns):
    k = lambda *a: kubectl(svc_server, ns, *a)  # noqa: E731
    k("run", "web", "--image=busybox", "--labels=app=web,tier=fe", "--port=8080")
    k("expose", "pod", "web", "--port", "80", "--target-port", "8080", "--name", "web-svc")
    svc = get_json(svc_server, ns, "svc", "web-svc")
    assert svc["spec"]["selector"] == {"app": "web", "tier": "fe"}
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    k("run", "bare", "--image=busybox", "--labels=app=bare", "--port=8081")
    k("expose", "pod", "bare")  # the port is the pod's container port
    assert get_json(svc_server, ns, "svc", "bare")["spec"]["ports"] == \
        [{"port": 8081, "protocol": "TCP", "targetPort": 8081}]
    k("create", "deployment", "api", "--image=busybox", "--port=9000")
    k("expose", "deployment", "api", "--port", "90", "--type", "NodePort")
    svc = get_json(svc_server, ns, "svc", "api")
    assert svc["spec"]["selector"] == {"app": "api"}
    assert svc["spec"]["ports"][0]["targetPort"] == 90  # --port, when no --target-port
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 30099
    out = k("describe", "svc", "api").stdout
    for text in ("Type:                     NodePort", "Selector:                 app=api",
                 "TargetPort:               90/TCP", "Session Affinity:         None",
                 "External Traffic Policy:  Cluster"):
        assert text in out, out


def test_refused_allocations_name_the_field_and_leave_nothing(svc_server, ns):
    k = lambda *a, check=True: kubectl(svc_server, ns, *a, check=check)  # noqa: E731
    msg = error_of(k("create", "service", "clusterip", "out", "--tcp=80",
                     "--clusterip=1.2.3.4", check=False))
    assert msg.endswith('Service "out" is invalid: spec.clusterIPs: Invalid value: '
                        '["1.2.3.4"]: failed to allocate IP 1.2.3.4: provided IP is not in the '
                        'valid range. The range of valid IPs is 198.18.0.0/24')
    k("create", "service", "clusterip", "first", "--tcp=80", "--clusterip=198.18.0.10")
    msg = error_of(k("create", "service", "clusterip", "taken", "--tcp=80",
                     "--clusterip=198.18.0.10", check=False))
    assert msg.endswith('Service "taken" is invalid: spec.clusterIPs: Invalid value: '
                        '["198.18.0.10"]: failed to allocate IP 198.18.0.10: provided IP is '
                        'already allocated')
    k("create", "service", "nodeport", "np1", "--tcp=80", "--node-port=30080")
    msg = error_of(k("create", "service", "nodeport", "np2", "--tcp=80", "--node-port=30080",
                     check=False))
    assert msg.endswith('Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: '
                        '30080: provided port is already allocated')
    msg = error_of(k("create", "service", "nodeport", "np3", "--tcp=80", "--node-port=31000",
                     check=False))
    assert msg.endswith('spec.ports[0].nodePort: Invalid value: 31000: provided port is not '
                        'in the valid range. The range of valid ports is 30000-30099')
    names = k("get", "svc", "-o", "name").stdout.split()
    assert names == ["service/first", "service/np1"]
    # A dry run is refused the same way.
    msg = error_of(k("create", "service", "nodeport", "both", "--tcp=80", "--node-port=30080",
                     "--dry-run=server", check=False))
    assert "provided port is already allocated" in msg


def test_release_on_delete_and_dry_run_takes_nothing(svc_server, ns):
    k = lambda *a, check=True: kubectl(svc_server, ns, *a, check=check)  # noqa: E731
    k("create", "service", "nodeport", "a", "--tcp=80", "--node-port=30081",
      "--dry-run=server")
    k("create", "service", "nodeport", "a", "--tcp=80", "--node-port=30081")
    ip = get_json(svc_server, ns, "svc", "a")["spec"]["clusterIP"]
    k("create", "service", "nodeport", "z", "--tcp=80", "--node-port=30082")
    msg = error_of(k("patch", "svc", "z", "--dry-run=server", "-p",
                     '{"spec":{"ports":[{"port":80,"nodePort":30081}]}}', check=False))
    assert msg.endswith("spec.ports[0].nodePort: Invalid value: 30081: provided port is "
                        "already allocated")
    k("delete", "svc", "a")
    create_svc(svc_server, ns, "b", type="NodePort", clusterIP=ip,
               ports=[{"port": 80, "nodePort": 30081}])
    assert get_json(svc_server, ns, "svc", "b")["spec"]["clusterIP"] == ip


def test_cluster_ip_is_immutable_and_type_changes(svc_server, ns):
    k = lambda *a, check=True: kubectl(svc_server, ns, *a, check=check)  # noqa: E731
    k("create", "service", "clusterip", "c", "--tcp=80")
    ip = get_json(svc_server, ns, "svc", "c")["spec"]["clusterIP"]
    msg = error_of(k("patch", "svc", "c", "-p", '{"spec":{"clusterIP":"198.18.0.250"}}',
                     check=False))
    assert msg == ('The Service "c" is invalid: spec.clusterIPs[0]: Invalid value: '
                   '["198.18.0.250"]: may not change once set')
    k("patch", "svc", "c", "-p", '{"spec":{"type":"NodePort"}}')
    spec = get_json(svc_server, ns, "svc", "c")["spec"]
    assert spec["clusterIP"] == ip and 30000 <= spec["ports"][0]["nodePort"] <= 30099
    node_port = spec["ports"][0]["nodePort"]
    k("patch", "svc", "c", "-p", '{"spec":{"type":"ExternalName","externalName":"x.example"}}')
    spec = get_json(svc_server, ns, "svc", "c")["spec"]
    assert "clusterIP" not in spec and "nodePort" not in spec["ports"][0]
    # Both went back: another Service may take them now.
    create_svc(svc_server, ns, "d", type="NodePort", clusterIP=ip,
               ports=[{"port": 80, "nodePort": node_port}])


@pytest.mark.parametrize("spec, message", [
    ({"ports": [{"port": 0}]},
     "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"),
    ({"ports": [{"port": 80, "protocol": "HTTP"}]},
     'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", '
     '"UDP"'),
    ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name: Required value"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]},
     'spec.ports[1].name: Duplicate value: "a"'),
    ({"type": "ExternalName"}, "spec.externalName: Required value"),
    ({"type": "Magic", "ports": [{"port": 80}]},
     'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
     '"LoadBalancer", "NodePort"'),
    ({"ports": [{"port": 80, "nodePort": 30001}]},
     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    ({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]},
     'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address'),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {
        "timeoutSeconds": 100000}}, "ports": [{"port": 80}]},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 100000: must be "
     "greater than 0 and less than 86400"),
    ({"ports": []}, "spec.ports: Required value"),
])
def test_validation_messages(svc_server, ns, spec, message):
    from kubernetes.client.rest import ApiException
    import kubernetes.client
    api = kubernetes.client.CoreV1Api(svc_server.client())
    with pytest.raises(ApiException) as info:
        api.create_namespaced_service(ns, {"metadata": {"name": "bad"}, "spec": spec})
    body = json.loads(info.value.body)
    assert info.value.status == 422 and message in body["message"], body["message"]
    assert api.list_namespaced_service(ns).items == []


def test_python_client_defaults_status_and_affinity(svc_server, core, ns):
    from kubernetes import client
    svc = core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="aff"),
        spec=client.V1ServiceSpec(selector={"app": "x"}, session_affinity="ClientIP",
                                  publish_not_ready_addresses=True,
                                  ports=[client.V1ServicePort(name="dns", port=53,
                                                              protocol="UDP",
                                                              target_port="dns-port")])))
    assert svc.spec.session_affinity_config.client_ip.timeout_seconds == 10800
    assert svc.spec.ports[0].target_port == "dns-port"
    assert svc.spec.publish_not_ready_addresses is True
    svc.status = client.V1ServiceStatus(load_balancer=client.V1LoadBalancerStatus(
        ingress=[client.V1LoadBalancerIngress(ip="198.18.5.5")]))
    core.replace_namespaced_service_status("aff", ns, svc)
    got = core.read_namespaced_service("aff", ns)
    assert got.status.load_balancer.ingress[0].ip == "198.18.5.5"
    assert got.spec.cluster_ip == svc.spec.cluster_ip
    names = [s.metadata.name for s in core.list_service_for_all_namespaces(
        field_selector="spec.type=ClusterIP").items]
    assert "aff" in names and "kubernetes" in names


def test_endpointslice_and_endpoints_validation(svc_server, core, ns):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    discovery = client.DiscoveryV1Api(core.api_client)
    good = discovery.create_namespaced_endpoint_slice(ns, {
        "metadata": {"name": "s1", "labels": {"kubernetes.io/service-name": "x"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["198.18.1.1"],
                                              "conditions": {"ready": True}}],
        "ports": [{"port": 80}]})
    assert good.ports[0].protocol == "TCP" and good.ports[0].name == ""
    for body, message in (
            ({"addressType": "IPv5"},
             'addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", '
             '"IPv6"'),
            ({"addressType": "IPv4", "endpoints": [{"addresses": ["fe80::1"]}]},
             'endpoints[0].addresses[0]: Invalid value: "fe80::1": must be a valid IPv4 '
             'address'),
            ({"addressType": "IPv4", "endpoints": [{"addresses": []}]},
             "endpoints[0].addresses: Required value"),
            ({"addressType": "IPv4", "ports": [{"name": "a", "port": 1}, {"name": "a"}]},
             'ports[1].name: Duplicate value: "a"')):
        with pytest.raises(ApiException) as info:
            discovery.create_namespaced_endpoint_slice(ns, {"metadata": {"name": "bad"},
                                                            **body})
        assert message in json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:
        discovery.patch_namespaced_endpoint_slice("s1", ns, {"addressType": "IPv6",
                                                             "endpoints": []})
    assert 'addressType: Invalid value: "IPv6": field is immutable' in \
        json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_endpoints(ns, {"metadata": {"name": "e"}, "subsets": [
            {"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]})
    assert 'subsets[0].addresses[0].ip: Invalid value: "nope"' in \
        json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_endpoints(ns, {"metadata": {"name": "e"}, "subsets": [
            {"ports": [{"port": 80}]}]})
    assert "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`" in \
        json.loads(info.value.body)["message"]


def test_kubectl_explain_and_api_resources(svc_server, ns):
    out = kubectl(svc_server, ns, "explain", "svc.spec.sessionAffinityConfig").stdout
    assert "KIND:       Service" in out and "clientIP" in out
    out = kubectl(svc_server, ns, "explain", "endpointslices.endpoints.conditions").stdout
    assert "GROUP:      discovery.k8s.io" in out and "terminating" in out
    out = kubectl(svc_server, ns, "api-resources").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["services"][1:] == ["svc", "v1", "true", "Service"]
    assert lines["endpoints"][1:] == ["ep", "v1", "true", "Endpoints"]
    assert lines["endpointslices"][1:] == ["discovery.k8s.io/v1", "true", "EndpointSlice"]


def test_endpoints_are_deprecated_as_in_kube(svc_server, ns):
    proc = kubectl(svc_server, "default", "get", "endpoints", "kubernetes")
    assert proc.stderr.strip() == ("Warning: v1 Endpoints is deprecated in v1.33+; use "
                                   "discovery.k8s.io/v1 EndpointSlice")
    assert kubectl(svc_server, "default", "get", "svc", "kubernetes").stderr == ""


def test_no_double_allocation_across_a_restart():
    """A range of 14 addresses (one is the kubernetes Service's) and 4 node ports: filled
    half before a restart and the rest after, every address and port is handed out once,
    then the ranges are full."""
    server = start_server(["--service-cluster-ip-range", "198.18.1.0/28",
                           "--service-node-port-range", "30100-30103"])
    try:
        k = lambda *a, check=True: server.kubectl(*a, check=check)  # noqa: E731

        def make(i: int) -> None:
            if i < 4:
                k("create", "service", "nodeport", f"s{i}", "--tcp=80")
            else:
                k("create", "service", "clusterip", f"s{i}", "--tcp=80")
        for i in range(6):
            make(i)
        server.restart()
        for i in range(6, 13):
            make(i)
        items = json.loads(k("get", "svc", "-o", "json").stdout)["items"]
        ips = [s["spec"]["clusterIP"] for s in items]
        ports = [p["nodePort"] for s in items for p in s["spec"]["ports"] if p.get("nodePort")]
        assert len(ips) == 14 and len(set(ips)) == 14
        assert sorted(ports) == [30100, 30101, 30102, 30103]
        msg = error_of(k("create", "service", "clusterip", "full", "--tcp=80", check=False))
        assert "failed to allocate a serviceIP: range is full" in msg
        k("delete", "svc", "s5")
        server.restart()
        k("create", "service", "clusterip", "again", "--tcp=80")
        msg = error_of(create_svc(server, "default", "np", type="NodePort", clusterIP="None",
                                  check=False))
        assert "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for " \
            "NodePort services" in msg
    finally:
        stop_server(server)


def test_bad_flags_one_line(tmp_path):
    import subprocess
    from apiserver_testlib import BIN
    import os
    for flag, value, text in (
            ("--service-cluster-ip-range", "10.0.0.0/33", "--service-cluster-ip-range: "
             "invalid CIDR"),
            ("--service-node-port-range", "3-2", "--service-node-port-range: invalid port "
             "range"),
            ("--advertise-address", "nope", "--advertise-address: invalid IP address")):
        proc = subprocess.run([os.path.join(BIN, "pyapiserver"), "--port", "0", "--data-dir",
                               str(tmp_path / "d"), flag, value], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 1
        assert proc.stderr.startswith("pyapiserver: " + text), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
