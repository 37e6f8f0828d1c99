"""The CNI protocol edges, by exec: VERSION, missing or bad parameters, malformed or invalid
configuration and a missing netns, each answered with an error result carrying the spec's code,
and leaving nothing behind. Where the reference plugins agree, they are checked too."""
import os
import subprocess

import pytest

from netkit import REFERENCE_BIN, VENV_BIN, exec_plugin, host_link_names, unique
from netns import enter, links, rtnl

OURS = {p: os.path.join(VENV_BIN, f"pycni-{p}") for p in ("bridge", "host-local", "loopback",
                                                         "portmap")}
REF = {p: os.path.join(REFERENCE_BIN, p) for p in OURS}


def bridge_conf(tmp_path, bridge, version="1.0.0", **extra):
    return {"cniVersion": version, "name": "protonet", "type": "bridge", "bridge": bridge,
            "isGateway": True,
            "ipam": {"type": "pycni-host-local", "subnet": "198.18.12.0/24",
                     "dataDir": str(tmp_path / "ipam")}, **extra}


@pytest.mark.parametrize("plugin", sorted(OURS))
def test_version(plugin):
    code, out = exec_plugin(OURS[plugin], "VERSION", {"cniVersion": "0.4.0"})
    assert code == 0
    assert out == {"cniVersion": "0.4.0",
                   "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


def test_no_command_prints_what_it_is():
    run = subprocess.run([OURS["bridge"]], capture_output=True, env={}, text=True)
    assert run.returncode == 0 and "CNI protocol versions supported" in run.stderr


@pytest.mark.parametrize("impl", [OURS, REF], ids=["ours", "reference"])
def test_missing_parameters_are_error_4(impl, tmp_path):
    code, out = exec_plugin(impl["bridge"], "ADD", bridge_conf(tmp_path, unique("pyb")), "c1", "",
                            env_override={"CNI_NETNS": None})
    assert code != 0 and out["code"] == 4 and "CNI_NETNS" in out["msg"]
    code, out = exec_plugin(impl["loopback"], "FROB", {"cniVersion": "1.0.0", "name": "n"},
                            "c1", "/x")
    assert code != 0 and out["code"] == 4


@pytest.mark.parametrize("impl", [OURS, REF], ids=["ours", "reference"])
def test_malformed_config_is_error_6(impl, namespaces):
    code, out = exec_plugin(impl["bridge"], "ADD", b"{not json", "c1", namespaces.new())
    assert code != 0 and out["code"] == 6


@pytest.mark.parametrize("impl", [OURS, REF], ids=["ours", "reference"])
def test_unsupported_version_is_error_1(impl, namespaces):
    code, out = exec_plugin(impl["loopback"], "ADD", {"cniVersion": "7.0.0", "name": "n"},
                            "c1", namespaces.new())
    assert code != 0 and out["code"] == 1


def test_check_needs_0_4_0_and_gc_needs_1_1_0(namespaces):
    conf = {"cniVersion": "0.3.1", "name": "n", "type": "pycni-loopback"}
    code, out = exec_plugin(OURS["loopback"], "CHECK", conf, "c1", namespaces.new())
    assert code == 1 and out["code"] == 1 and out["cniVersion"] == "0.3.1"
    code, out = exec_plugin(OURS["loopback"], "GC", dict(conf, cniVersion="1.0.0"))
    assert code == 1 and out["code"] == 1


def pod_link_names(pod: str) -> set[str]:
    def names() -> set[str]:
        with rtnl.RtnlSocket() as sock:
            return {link.name for link in links.list_links(sock)}
    return enter.run_in_netns(pod, names)


@pytest.mark.parametrize("bad, field, code_", [
    ({"mtu": "big"}, "mtu", 7),
    ({"hairpinMode": "yes"}, "hairpinMode", 7),
    ({"bridge": "this-name-is-too-long"}, "bridge", 7),
    ({"vlan": 5}, "vlan", 2),
    ({"ipam": {"type": "pycni-host-local", "subnet": "198.18.12.1/24"}}, "host bits", 7),
    ({"name": "bad name"}, "network name", 7),
])
def test_invalid_bridge_config_names_the_field_and_leaves_nothing(tmp_path, namespaces, bad,
                                                                  field, code_, bridge_name):
    bridge = bridge_name
    pod = namespaces.new()
    code, out = exec_plugin(OURS["bridge"], "ADD", {**bridge_conf(tmp_path, bridge), **bad},
                            "c1", pod)
    assert code == 1 and out["code"] == code_ and field in out["msg"], out
    # No bridge, and no veth: the plugin makes a pair with one end in the pod, so a pair left
    # anywhere shows there. (Other tests add and remove host links meanwhile.)
    assert bridge not in host_link_names()
    assert pod_link_names(pod) == {"lo"}
    assert not (tmp_path / "ipam" / "protonet" / "198.18.12.2").exists()
    code, out = exec_plugin(OURS["loopback"], "CHECK",
                            {"cniVersion": "1.0.0", "name": "n"}, "c1", pod)
    assert code == 1  # the pod's loopback is still down: nothing touched it


def test_missing_netns_is_error_4_and_leaves_nothing(tmp_path, namespaces, bridge_name):
    bridge = bridge_name
    missing = os.path.join(namespaces.dir, "gone")
    for plugin in ("bridge", "loopback"):
        code, out = exec_plugin(OURS[plugin], "ADD", bridge_conf(tmp_path, bridge), "c1",
                                missing)
        assert code == 1 and out["code"] == 4 and "CNI_NETNS" in out["msg"], out
    assert bridge not in host_link_names()  # and no veth: it would need the missing netns
    assert not (tmp_path / "ipam" / "protonet").exists() or not any(
        n[0].isdigit() for n in os.listdir(tmp_path / "ipam" / "protonet"))
    # The reference fails too (with its generic code, after creating the bridge, which the
    # fixture removes) and DEL stays successful for both.
    code, out = exec_plugin(REF["bridge"], "ADD", bridge_conf(tmp_path, bridge), "c1", missing)
    assert code != 0 and "code" in out
    for impl in (OURS, REF):
        assert exec_plugin(impl["bridge"], "DEL", bridge_conf(tmp_path, bridge), "c1",
                           missing)[0] == 0


def test_our_own_netns_is_refused(tmp_path):
    code, out = exec_plugin(OURS["loopback"], "ADD", {"cniVersion": "1.0.0", "name": "n"}, "c1",
                            "/proc/self/ns/net")
    assert code == 1 and out["code"] == 4 and "own network namespace" in out["msg"]


def test_results_follow_the_requested_version(namespaces):
    pod = namespaces.new()
    for version, has_version_field in (("0.3.1", True), ("1.0.0", False)):
        conf = {"cniVersion": version, "name": "lonet", "type": "pycni-loopback"}
        code, out = exec_plugin(OURS["loopback"], "ADD", conf, "c1", pod)
        assert code == 0 and out["cniVersion"] == version
        assert out["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": pod}]
        assert ("version" in out["ips"][0]) is has_version_field
        assert "127.0.0.1/8" in [ip["address"] for ip in out["ips"]]
    code, out = exec_plugin(os.path.join(REFERENCE_BIN, "loopback"), "CHECK",
                            {"cniVersion": "1.0.0", "name": "lonet", "prevResult": out},
                            "c1", pod)
    assert code == 0, out
    assert exec_plugin(OURS["loopback"], "DEL", conf, "c1", pod) == (0, None)
    # DEL took lo down: CHECK now fails, as the reference's does, with the generic code 999.
    for impl in (OURS["loopback"], os.path.join(REFERENCE_BIN, "loopback")):
        code, err = exec_plugin(impl, "CHECK", dict(conf, prevResult=out), "c1", pod)
        assert code == 1 and err["code"] == 999, (impl, err)
    code, err = exec_plugin(OURS["loopback"], "CHECK", conf, "c1", pod)
    assert code == 1 and err["code"] == 999 and "down" in err["msg"], err


@pytest.mark.parametrize("bad, field, code_", [
    ({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}, "hostPort", 7),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 80,
                                          "protocol": "icmp"}]}}, "protocol", 7),
    ({"masqAll": True}, "masqAll", 2),
    ({"backend": "ebpf"}, "backend", 7),
    ({"prevResult": None}, "prevResult", 7),
])
def test_invalid_portmap_config(bad, field, code_, namespaces):
    conf = {"cniVersion": "1.0.0", "name": "pmnet", "type": "pycni-portmap",
            "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "198.18.14.2/24"}]},
            "runtimeConfig": {"portMappings": [{"hostPort": 18500, "containerPort": 80}]}}
    conf.update(bad)
    if conf["prevResult"] is None:
        del conf["prevResult"]
    code, out = exec_plugin(OURS["portmap"], "ADD", conf, "c1", namespaces.new())
    assert code == 1 and out["code"] == code_ and field in out["msg"], out
