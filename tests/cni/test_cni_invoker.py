"""The invoker (libcni's job): loading a network from a conf dir, version choice, the plugin
search path, capabilities passed as runtimeConfig, the result cache in libcni's layout, rollback
of a failed ADD, CHECK, GC and STATUS. Plugins here are our loopback/host-local and a tiny
recording plugin written by the test."""
import base64
import json
import os
import stat

import pytest

from cni import conf as cni_conf
from cni import invoker
from cni.errors import CNIError
from netkit import CNI_PATH, EchoServer, bridge_ports, random_subnet, roundtrip, unique

RECORDER = """#!/bin/sh
# Records what the runtime handed it, then answers with its prevResult (or a minimal result).
cat > "$RECORD_DIR/$CNI_COMMAND-$(date +%s%N)"
env | grep ^CNI_ > "$RECORD_DIR/env-$CNI_COMMAND"
[ -n "$FAIL_ON" ] && [ "$CNI_COMMAND" = "$FAIL_ON" ] && {
    echo '{"cniVersion": "1.0.0", "code": 11, "msg": "not now"}'; exit 1; }
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion": "1.0.0", "ips": [{"address": "198.18.0.9/24"}]}'
exit 0
"""


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "recorder"
    path.write_text(RECORDER)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("RECORD_DIR", str(record))
    return str(bin_dir), record


def recorded(record, command):
    files = sorted(f for f in os.listdir(record) if f.startswith(command + "-"))
    return [json.loads((record / f).read_text()) for f in files]


def write(dir_, name, data):
    os.makedirs(dir_, exist_ok=True)
    with open(os.path.join(dir_, name), "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))


def test_load_picks_first_valid_file_by_name_or_the_named_network(tmp_path):
    d = tmp_path / "net.d"
    write(d, "10-broken.conflist", "{nope")
    write(d, "20-b.conflist", {"cniVersion": "1.0.0", "name": "bnet",
                               "plugins": [{"type": "pycni-loopback"}]})
    write(d, "30-a.conf", {"cniVersion": "0.4.0", "name": "anet", "type": "pycni-loopback",
                           "extra": 1})
    write(d, "99-ignored.txt", "x")
    assert cni_conf.load(str(d)).name == "bnet"
    single = cni_conf.load(str(d), "anet")
    assert single.plugins == [{"type": "pycni-loopback", "extra": 1}]  # .conf wrapped
    assert single.cni_version == "0.4.0"
    with pytest.raises(CNIError, match="no valid network 'cnet'") as err:
        cni_conf.load(str(d), "cnet")
    assert err.value.code == 7
    with pytest.raises(CNIError, match="no valid network configuration"):
        cni_conf.load(str(tmp_path / "empty"))


def test_version_is_the_highest_offered_that_we_speak():
    raw = {"cniVersion": "0.4.0", "cniVersions": ["1.0.0", "1.1.0", "9.0.0"], "name": "n",
           "plugins": [{"type": "x"}]}
    assert cni_conf.parse(json.dumps(raw).encode()).cni_version == "1.1.0"
    with pytest.raises(CNIError) as err:
        cni_conf.parse(json.dumps(dict(raw, cniVersion="0.1.0", cniVersions=[])).encode())
    assert err.value.code == 1


def test_add_passes_prev_result_and_capabilities_and_caches(tmp_path, recorder, namespaces):
    bin_dir, record = recorder
    raw = {"cniVersion": "1.0.0", "name": "capnet", "plugins": [
        {"type": "recorder", "capabilities": {"portMappings": True, "bandwidth": False}},
        {"type": "recorder", "custom": {"kept": True}},
        {"type": "pycni-loopback"}]}
    net = cni_conf.parse(json.dumps(raw).encode())
    cache_dir = tmp_path / "cache"
    cni = invoker.CNI([bin_dir] + CNI_PATH, str(cache_dir))
    pod = namespaces.new()
    ports = [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]
    rt = invoker.RuntimeConf("cid1", pod, "eth0", args=[("K8S_POD_NAME", "p")],
                             capability_args={"portMappings": ports, "bandwidth": {"x": 1}})
    result = cni.add(net, rt)
    first, second = recorded(record, "ADD")
    assert first["runtimeConfig"] == {"portMappings": ports}  # only declared, enabled ones
    assert "capabilities" not in first and "prevResult" not in first
    assert first["name"] == "capnet" and first["cniVersion"] == "1.0.0"
    assert second["custom"] == {"kept": True} and "runtimeConfig" not in second
    assert second["prevResult"]["ips"] == [{"address": "198.18.0.9/24"}]
    env = (record / "env-ADD").read_text()
    assert "CNI_ARGS=K8S_POD_NAME=p" in env and f"CNI_NETNS={pod}" in env
    assert f"CNI_PATH={bin_dir}:" in env
    assert result["ips"] == [{"address": "198.18.0.9/24"}]  # loopback passes prevResult on
    entry = json.loads((cache_dir / "results" / "capnet-cid1-eth0").read_text())
    assert entry["kind"] == "cniCacheV1" and entry["containerId"] == "cid1"
    assert base64.b64decode(entry["config"]) == net.raw
    assert entry["result"] == result and entry["cniArgs"] == [["K8S_POD_NAME", "p"]]
    assert cni.cached_result(net, rt) == result

    cni.check(net, rt)
    assert recorded(record, "CHECK")[0]["prevResult"] == result
    with pytest.raises(CNIError, match="already attached"):
        cni.add(net, rt)
    cni.delete(net, rt)
    dels = recorded(record, "DEL")
    assert len(dels) == 2 and all(d["prevResult"] == result for d in dels)
    assert not (cache_dir / "results" / "capnet-cid1-eth0").exists()
    with pytest.raises(CNIError) as err:
        cni.check(net, rt)
    assert err.value.code == 3


def test_failed_add_is_rolled_back_with_del(tmp_path, recorder, namespaces, bridge_name,
                                            monkeypatch):
    bin_dir, record = recorder
    monkeypatch.setenv("FAIL_ON", "ADD")
    network = unique("net")
    raw = {"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "pycni-bridge", "bridge": bridge_name, "isGateway": True,
         "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": random_subnet()}]],
                  "dataDir": str(tmp_path / "ipam")}},
        {"type": "recorder"}]}
    net = cni_conf.parse(json.dumps(raw).encode())
    cni = invoker.CNI([bin_dir] + CNI_PATH, str(tmp_path / "cache"), in_process=True)
    with pytest.raises(CNIError, match="plugin type='recorder' failed \\(add\\): not now") as err:
        cni.add(net, invoker.RuntimeConf("cid1", namespaces.new(), "eth0"))
    assert err.value.code == 11
    assert len(recorded(record, "DEL")) == 1
    assert bridge_ports(bridge_name) == set()
    assert [n for n in os.listdir(tmp_path / "ipam" / network) if n[0].isdigit()] == []
    assert not os.path.exists(tmp_path / "cache" / "results" / f"{network}-cid1-eth0")


def test_missing_plugin_and_bad_attachment_parameters(tmp_path, namespaces):
    raw = {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "no-such-plugin"}]}
    cni = invoker.CNI(CNI_PATH, str(tmp_path))
    net = cni_conf.parse(json.dumps(raw).encode())
    with pytest.raises(CNIError, match="failed to find plugin 'no-such-plugin'"):
        cni.add(net, invoker.RuntimeConf("c1", namespaces.new()))
    with pytest.raises(CNIError) as err:
        cni.add(net, invoker.RuntimeConf("bad id!", "/x"))
    assert err.value.code == 4
    with pytest.raises(CNIError) as err:
        cni.add(net, invoker.RuntimeConf("c1", "/x", "much-too-long-name"))
    assert err.value.code == 4


def test_gc_and_status(tmp_path, namespaces):
    data = tmp_path / "ipam"
    raw = {"cniVersion": "1.1.0", "name": "gcnet", "plugins": [
        {"type": "pycni-loopback"}]}
    ipam = {"cniVersion": "1.1.0", "name": "gcipam", "plugins": [
        {"type": "pycni-host-local", "ranges": [[{"subnet": "198.18.13.0/30"}]],
         "dataDir": str(data)}]}
    cni = invoker.CNI(CNI_PATH, str(tmp_path / "cache"), in_process=True)
    net = cni_conf.parse(json.dumps(raw).encode())
    pods = {cid: namespaces.new() for cid in ("a", "b")}
    for cid, pod in pods.items():
        cni.add(net, invoker.RuntimeConf(cid, pod))
    cni.gc(net, [("a", "eth0")])
    assert os.listdir(tmp_path / "cache" / "results") == ["gcnet-a-eth0"]
    # host-local as a network of its own: GC releases, STATUS reports exhaustion (code 50).
    ipam_raw = json.dumps(ipam).encode()
    ipam_net = cni_conf.parse(ipam_raw)
    ipam_net.plugins[0]["ipam"] = dict(ipam_net.plugins[0])
    cni.add(ipam_net, invoker.RuntimeConf("a", pods["a"]))
    with pytest.raises(CNIError) as err:
        cni.status(ipam_net)
    assert err.value.code == 50
    cni.gc(ipam_net, [])
    assert [n for n in os.listdir(data / "gcipam") if n[0].isdigit()] == []
    cni.status(ipam_net)


def test_version_info_of_ours_and_the_reference(tmp_path):
    for in_process in (False, True):
        cni = invoker.CNI(CNI_PATH, str(tmp_path), in_process=in_process)
        assert "1.1.0" in cni.version_info("pycni-bridge")["supportedVersions"]
        assert "1.0.0" in cni.version_info("bridge")["supportedVersions"]


@pytest.mark.parametrize("plugin_type, in_process", [
    ("pycni-loopback", False), ("pycni-loopback", True), ("loopback", False)])
def test_loopback_network(plugin_type, in_process, tmp_path, namespaces):
    net = cni_conf.parse(json.dumps({"cniVersion": "1.0.0", "name": "lo",
                                     "plugins": [{"type": plugin_type}]}).encode())
    cni = invoker.CNI(CNI_PATH, str(tmp_path), in_process=in_process)
    pod = namespaces.new()
    rt = invoker.RuntimeConf("c1", pod, "lo")
    result = cni.add(net, rt)
    assert result["interfaces"][0]["name"] == "lo"
    assert "127.0.0.1/8" in [ip["address"] for ip in result["ips"]]
    server = EchoServer(pod, "127.0.0.1")
    try:
        assert roundtrip(pod, "127.0.0.1", server.port, b"lo") == b"echo:lo from:127.0.0.1"
    finally:
        server.close()
    cni.check(net, rt)
    cni.delete(net, rt)
    cni.delete(net, rt)
