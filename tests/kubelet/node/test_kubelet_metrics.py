"""The kubelet's metrics and stats endpoints with a real pykubelet and API server: a busy pod and
a pod holding memory show up in /metrics/resource (checked with a strict parser of the
Prometheus text format), /stats/summary and /metrics; only authenticated callers get them;
and `kubectl top pod|node` shows the usage the API server's metrics.k8s.io computes from two
scrapes."""
from __future__ import annotations

import json
import math
import os
import re
import ssl
import urllib.error
import urllib.request

import pytest

from kubelet_testlib import IMAGE, wait_for

MIB = 1 << 20
FILL_MIB = 48

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text: str) -> dict[str, dict]:
    """Prometheus text format 0.0.4, strictly: every family has HELP then TYPE before its
    samples, which are contiguous and named after it; labels, values and integer timestamps
    are well formed; the text ends with a newline. Returns name -> {"type", "help",
    "samples": [(labels, value, timestamp)]}."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, dict] = {}
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and name not in families, line
            current = families[name] = {"help": help_text, "type": None, "samples": []}
            current["name"] = name
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current and current["name"] == name and current["type"] is None, line
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            current["type"] = kind
            continue
        assert not line.startswith("#") and line, f"unexpected line {line!r}"
        m = _SAMPLE.match(line)
        assert m, f"malformed sample {line!r}"
        name, labels_text, value, timestamp = m.groups()
        assert current and current["type"], f"sample before its HELP and TYPE: {line!r}"
        base = current["name"]
        allowed = {base} | ({base + s for s in ("_bucket", "_sum", "_count")}
                            if current["type"] == "histogram" else set())
        assert name in allowed, f"{name} inside family {base}"
        labels = {}
        rest = labels_text or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm, f"malformed labels in {line!r}"
            labels[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        number = float(value)          # Go's formats: 1e+06, +Inf, NaN all parse
        assert not math.isnan(number) or value == "NaN", line
        current["samples"].append((labels, number, int(timestamp) if timestamp else None))
    return families


def kubelet_get(kubelet, api_server, path: str, cert: bool = True,
                token: str | None = None) -> tuple[int, str, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cert:
        pki = os.path.join(api_server.data_dir, "pki")
        ctx.load_cert_chain(os.path.join(pki, "apiserver-kubelet-client.crt"),
                            os.path.join(pki, "apiserver-kubelet-client.key"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"https://127.0.0.1:{kubelet.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, "", e.read().decode()


def _container(name: str, command: str, resources: dict | None = None) -> dict:
    c = {"name": name, "image": IMAGE, "imagePullPolicy": "Never",
         "command": ["sh", "-c", command]}
    if resources:
        c["resources"] = resources
    return c


@pytest.fixture(scope="module")
def loaded(api, kubelet):
    """A namespace with a pod of two containers: one spinning under a 200m CPU limit, one
    holding FILL_MIB MiB in a tmpfs file (and 300 kB written to its root filesystem)."""
    namespace = api.namespace()
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "load", "labels": {"app": "load"}},
           "spec": {"nodeName": kubelet.node, "terminationGracePeriodSeconds": 0,
                    "containers": [
                        _container("busy", "while :; do :; done",
                                   {"limits": {"cpu": "200m", "memory": "64Mi"}}),
                        _container("mem", f"dd if=/dev/zero of=/dev/shm/fill bs=1048576 "
                                          f"count={FILL_MIB} && head -c 300000 /dev/zero "
                                          f"> /written && exec sleep 100000")]}}
    api.create_pod(namespace, pod)
    wait_for(lambda: api.running(namespace, "load"), timeout=60, what="pod load running")
    yield namespace
    api.delete_pod(namespace, "load", grace=0)
    wait_for(lambda: api.pod(namespace, "load") is None, timeout=60, what="pod load gone")


def _samples(families: dict, name: str, **labels) -> list[tuple]:
    return [s for s in families[name]["samples"]
            if all(s[0].get(k) == v for k, v in labels.items())]


def test_resource_metrics_show_the_pods_usage(api_server, kubelet, loaded):
    namespace = loaded

    def filled():
        code, ctype, body = kubelet_get(kubelet, api_server, "/metrics/resource")
        assert code == 200, body
        fams = parse_exposition(body)
        mem = _samples(fams, "container_memory_working_set_bytes", namespace=namespace,
                       pod="load", container="mem")
        return mem and mem[0][1] >= FILL_MIB * MIB and (ctype, fams)
    ctype, fams = wait_for(filled, timeout=60, interval=0.5, what="the tmpfs fill counted")
    assert ctype.startswith("text/plain; version=0.0.4")
    for name, kind in (("node_cpu_usage_seconds_total", "counter"),
                       ("node_memory_working_set_bytes", "gauge"),
                       ("container_cpu_usage_seconds_total", "counter"),
                       ("container_memory_working_set_bytes", "gauge"),
                       ("container_start_time_seconds", "gauge"),
                       ("pod_cpu_usage_seconds_total", "counter"),
                       ("pod_memory_working_set_bytes", "gauge"),
                       ("scrape_error", "gauge")):
        assert fams[name]["type"] == kind, name
    assert fams["node_cpu_usage_seconds_total"]["help"].startswith("[STABLE] ")
    assert _samples(fams, "scrape_error")[0][1] == 0
    (node_cpu,) = fams["node_cpu_usage_seconds_total"]["samples"]
    assert node_cpu[1] > 0 and node_cpu[2] > 10 ** 12     # a timestamp in milliseconds
    busy = _samples(fams, "container_cpu_usage_seconds_total", namespace=namespace, pod="load",
                    container="busy")
    assert busy and busy[0][1] > 0 and busy[0][2] > 10 ** 12
    starts = _samples(fams, "container_start_time_seconds", namespace=namespace, pod="load")
    assert {s[0]["container"] for s in starts} == {"busy", "mem"}
    assert all(s[2] is None and s[1] > 10 ** 9 for s in starts)
    pod_mem = _samples(fams, "pod_memory_working_set_bytes", namespace=namespace, pod="load")
    assert pod_mem[0][1] >= FILL_MIB * MIB
    assert set(pod_mem[0][0]) == {"namespace", "pod"}


def test_stats_summary(api_server, kubelet, loaded):
    namespace = loaded

    def written() -> dict | None:
        """The summary once it counts /written: the container writes it after its fill, so
        after the pod is Running."""
        code, ctype, body = kubelet_get(kubelet, api_server, "/stats/summary")
        assert code == 200 and ctype == "application/json"
        doc = json.loads(body)
        pods = [p for p in doc["pods"] if p["podRef"]["namespace"] == namespace]
        mem = [c for p in pods for c in p["containers"] if c["name"] == "mem"]
        return doc if mem and mem[0]["rootfs"]["usedBytes"] >= 300000 else None
    doc = wait_for(written, timeout=30, interval=0.3, what="/written counted")
    node = doc["node"]
    assert node["nodeName"] == kubelet.node
    assert node["cpu"]["usageCoreNanoSeconds"] > 0
    assert 0 < node["memory"]["workingSetBytes"] <= node["memory"]["usageBytes"]
    assert node["fs"]["capacityBytes"] >= node["fs"]["availableBytes"] > 0
    (pod,) = [p for p in doc["pods"] if p["podRef"]["namespace"] == namespace]
    assert pod["podRef"]["name"] == "load" and pod["podRef"]["uid"]
    assert {c["name"] for c in pod["containers"]} == {"busy", "mem"}
    mem = next(c for c in pod["containers"] if c["name"] == "mem")
    assert mem["memory"]["workingSetBytes"] >= FILL_MIB * MIB
    assert mem["logs"]["usedBytes"] >= 0 and mem["startTime"].endswith("Z")
    assert mem["rootfs"]["usedBytes"] >= 300000     # /written, in the container's upper dir
    assert pod["ephemeral-storage"]["usedBytes"] >= mem["rootfs"]["usedBytes"]
    assert pod["network"]["name"] == "eth0" and pod["network"]["rxBytes"] >= 0
    # Later reads have the CPU rate since the one before (0 while the CPU limit throttles
    # the container for the whole time between two reads).

    def busy_rate() -> int:
        again = json.loads(kubelet_get(kubelet, api_server, "/stats/summary")[2])
        (pod,) = [p for p in again["pods"] if p["podRef"]["namespace"] == namespace]
        busy = next(c for c in pod["containers"] if c["name"] == "busy")
        return busy["cpu"].get("usageNanoCores", 0)
    assert wait_for(busy_rate, timeout=30, interval=0.3, what="a CPU rate") > 0
    reduced = json.loads(kubelet_get(kubelet, api_server,
                                     "/stats/summary?only_cpu_and_memory=true")[2])
    assert "fs" not in reduced["node"] and reduced["pods"]


def test_kubelet_own_metrics(api_server, kubelet, loaded):
    code, _, body = kubelet_get(kubelet, api_server, "/metrics")
    assert code == 200
    fams = parse_exposition(body)
    assert _samples(fams, "kubelet_node_name") == [({"node": kubelet.node}, 1.0, None)]
    assert fams["kubelet_running_pods"]["samples"][0][1] >= 1
    running = _samples(fams, "kubelet_running_containers", container_state="running")
    assert running[0][1] >= 2
    starts = fams["kubelet_pod_start_duration_seconds"]
    assert starts["type"] == "histogram"
    buckets = [(s[0]["le"], s[1]) for s in starts["samples"] if "le" in s[0]]
    assert buckets[-1][0] == "+Inf" and [n for _, n in buckets] == sorted(n for _, n in buckets)
    count = re.search(r"^kubelet_pod_start_duration_seconds_count (\S+)$", body, re.M)
    assert float(count.group(1)) == buckets[-1][1] >= 1      # the load pod at least


def test_metrics_need_credentials(api, api_server, kubelet):
    for path in ("/metrics/resource", "/metrics", "/metrics/probes", "/stats/summary"):
        assert kubelet_get(kubelet, api_server, path, cert=False)[0] == 401, path
        assert kubelet_get(kubelet, api_server, path, cert=False,
                           token="not-a-token")[0] == 401, path
    admin_token = open(api.server.token_file).read().split(",")[0]
    assert kubelet_get(kubelet, api_server, "/metrics/resource", cert=False,
                       token=admin_token)[0] == 200


def _top(api, *args: str) -> str | None:
    r = api.kubectl("top", *args)
    return r.stdout if r.returncode == 0 else None


def test_kubectl_top(api, kubelet, loaded):
    namespace = loaded

    def busy_counted():
        out = _top(api, "pod", "-n", namespace, "--containers")
        if not out:
            return None
        rows = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines()[1:]}
        busy, mem = rows.get(("load", "busy")), rows.get(("load", "mem"))
        return busy and mem and busy[0] != "0m" and (busy, mem, out)
    busy, mem, out = wait_for(busy_counted, timeout=120, interval=2,
                              what="kubectl top pod with the busy container's CPU")
    assert out.splitlines()[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert busy[0].endswith("m") and int(busy[0][:-1]) > 0
    assert mem[1].endswith("Mi") and int(mem[1][:-2]) >= FILL_MIB
    whole = _top(api, "pod", "-n", namespace, "-l", "app=load")
    assert whole.splitlines()[1].split()[0] == "load"
    other = api.kubectl("top", "pod", "-n", namespace, "-l", "app=other")
    assert other.returncode == 0 and other.stdout == ""
    assert f"No resources found in {namespace} namespace." in other.stderr
    missing = api.kubectl("top", "pod", "-n", namespace, "nothere")
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    nodes = wait_for(lambda: _top(api, "node", kubelet.node), timeout=60, interval=2,
                     what="kubectl top node")
    header, row = nodes.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert row.split()[0] == kubelet.node and row.split()[1].endswith("m")


def test_resource_metrics_text_as_the_kubelet_writes_it():
    """The lines of kubernetes' resource_metrics_test.go for the same figures."""
    from kubelet.stats import resource_metrics
    from kubelet.stats.prometheus import render
    from kubelet.stats.provider import ContainerSample, PodSample, Snapshot
    from cgroups.usage import Usage

    at = 1624396278.302091597
    u = Usage(1624396278_302091597, 10_000_000_000, 2000, 1000, 0, 0, 0, 0)
    snap = Snapshot("n", 0, u, None, [
        PodSample("pod_a", "namespace_a", "uid", 0, u, None,
                  [ContainerSample("container_b", at - 120, u, None),
                   ContainerSample("container_a", at - 30, u, None)])])
    text = render(resource_metrics.families(snap))
    for line in (
            "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the "
            "node in core-seconds",
            "# TYPE node_cpu_usage_seconds_total counter",
            "node_cpu_usage_seconds_total 10 1624396278302",
            "node_memory_working_set_bytes 1000 1624396278302",
            'container_start_time_seconds{container="container_a",namespace="namespace_a",'
            'pod="pod_a"} 1.6243962483020916e+09',
            'container_cpu_usage_seconds_total{container="container_a",namespace="namespace_a",'
            'pod="pod_a"} 10 1624396278302',
            'pod_memory_working_set_bytes{namespace="namespace_a",pod="pod_a"} 1000 '
            '1624396278302',
            "# HELP scrape_error [ALPHA] 1 if there was an error while getting container "
            "metrics, 0 otherwise",
            "scrape_error 0", "resource_scrape_error 0"):
        assert line + "\n" in text, line
    fams = parse_exposition(text)
    assert list(fams) == sorted(fams)
    names = [s[0]["container"] for s in fams["container_cpu_usage_seconds_total"]["samples"]]
    assert names == ["container_a", "container_b"]
    failed = render(resource_metrics.families(None))
    assert "scrape_error 1\n" in failed and "node_" not in failed


def _write(directory, files: dict[str, str]) -> None:
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_working_set_from_v1_and_v2_files(tmp_path):
    """Working set = usage - inactive file cache, from each layout's own files (directories
    laid out as the kernel's, read through the cgroups package's drivers)."""
    from cgroups.mode import Hierarchies
    from cgroups.usage import read

    _write(tmp_path / "v2" / "kubepods" / "pod1", {
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        "memory.current": "104857600\n", "memory.swap.current": "4096\n",
        "memory.stat": "anon 50000000\nfile 54857600\ninactive_file 20971520\n"
                       "pgfault 900\npgmajfault 9\n"})
    v2 = read("/kubepods/pod1", Hierarchies("v2", {}, str(tmp_path / "v2")))
    assert (v2.cpu_ns, v2.memory_usage, v2.working_set, v2.rss, v2.swap) == \
        (2_500_000_000, 104857600, 104857600 - 20971520, 50000000, 4096)
    assert (v2.page_faults, v2.major_page_faults) == (900, 9)

    _write(tmp_path / "memory" / "kubepods" / "pod1", {
        "memory.usage_in_bytes": "104857600\n",
        "memory.stat": "inactive_file 1\ntotal_inactive_file 20971520\ntotal_rss 50000000\n"
                       "total_pgfault 900\ntotal_pgmajfault 9\n"})
    _write(tmp_path / "cpuacct" / "kubepods" / "pod1", {"cpuacct.usage": "2500000000\n"})
    v1 = read("/kubepods/pod1", Hierarchies("v1", {"memory": str(tmp_path / "memory"),
                                                   "cpuacct": str(tmp_path / "cpuacct")}, None))
    assert (v1.cpu_ns, v1.memory_usage, v1.working_set, v1.rss) == \
        (2_500_000_000, 104857600, 104857600 - 20971520, 50000000)
    assert read("/kubepods/gone", Hierarchies("v2", {}, str(tmp_path / "v2"))) is None
