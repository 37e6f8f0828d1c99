"""host-local, driven by the CNI protocol (exec), ours and the reference side by side on the same
data dir: allocation order, gateway skipping, ranges, requested IPs, exhaustion, release,
idempotent DEL, duplicate ADD, GC and STATUS."""
import os

import pytest

from netkit import REFERENCE_BIN, VENV_BIN, exec_plugin

OURS = os.path.join(VENV_BIN, "pycni-host-local")
REFERENCE = os.path.join(REFERENCE_BIN, "host-local")


def conf(data_dir, version="1.0.0", **ipam):
    ipam.setdefault("ranges", [[{"subnet": "198.18.9.0/29"}]])
    return {"cniVersion": version, "name": "hlnet", "type": "x",
            "ipam": {"type": "host-local", "dataDir": str(data_dir), **ipam}}


def add(plugin, c, cid, ifname="eth0", cni_args=""):
    return exec_plugin(plugin, "ADD", c, cid, "/nonexistent", ifname, cni_args)


@pytest.mark.parametrize("plugin", [OURS, REFERENCE], ids=["ours", "reference"])
def test_allocates_in_order_skipping_gateway_and_releases(tmp_path, plugin):
    c = conf(tmp_path, routes=[{"dst": "198.19.0.0/16"}])
    got = []
    for i in range(5):  # .2 .. .6: .1 is the gateway, .7 the broadcast
        code, out = add(plugin, c, f"c{i}")
        assert code == 0, out
        assert out["ips"][0]["gateway"] == "198.18.9.1"
        assert out["routes"] == [{"dst": "198.19.0.0/16"}]
        got.append(out["ips"][0]["address"])
    assert got == [f"198.18.9.{n}/29" for n in range(2, 7)]
    code, out = add(plugin, c, "c9")
    assert code != 0 and "no IP addresses available" in out["msg"]
    with open(tmp_path / "hlnet" / "198.18.9.3", newline="") as f:
        assert f.read() == "c1\r\neth0"  # the reference layout
    assert exec_plugin(plugin, "DEL", c, "c1", "", "eth0")[0] == 0
    assert not (tmp_path / "hlnet" / "198.18.9.3").exists()
    assert exec_plugin(plugin, "DEL", c, "c1", "", "eth0") == (0, None)  # idempotent
    code, out = add(plugin, c, "c10")  # round-robin: the freed address is found again
    assert out["ips"][0]["address"] == "198.18.9.3/29"


def test_ours_and_reference_share_the_data_dir(tmp_path):
    c = conf(tmp_path)
    assert add(OURS, c, "a")[1]["ips"][0]["address"] == "198.18.9.2/29"
    assert add(REFERENCE, c, "b")[1]["ips"][0]["address"] == "198.18.9.3/29"
    assert add(OURS, c, "c")[1]["ips"][0]["address"] == "198.18.9.4/29"
    assert exec_plugin(REFERENCE, "DEL", c, "a", "", "eth0")[0] == 0
    assert exec_plugin(OURS, "DEL", c, "b", "", "eth0")[0] == 0
    left = sorted(n for n in os.listdir(tmp_path / "hlnet") if n[0].isdigit())
    assert left == ["198.18.9.4"]


def test_duplicate_add_is_refused_and_keeps_the_first(tmp_path):
    c = conf(tmp_path)
    assert add(OURS, c, "a")[0] == 0
    code, out = add(OURS, c, "a")
    assert code == 1 and "duplicate allocation" in out["msg"]
    assert sorted(n for n in os.listdir(tmp_path / "hlnet") if n[0].isdigit()) == ["198.18.9.2"]
    assert add(OURS, c, "a", ifname="eth1")[0] == 0  # another interface is another attachment


def test_ranges_requested_ip_and_several_families(tmp_path):
    c = conf(tmp_path, ranges=[
        [{"subnet": "198.18.10.0/24", "rangeStart": "198.18.10.100", "rangeEnd": "198.18.10.101"},
         {"subnet": "198.18.11.0/24", "rangeStart": "198.18.11.50", "rangeEnd": "198.18.11.50",
          "gateway": "198.18.11.254"}],
        [{"subnet": "fd00:198:18::/120"}]])
    addrs = []
    for cid in ("a", "b", "c"):
        code, out = add(OURS, c, cid)
        assert code == 0, out
        addrs.append([ip["address"] for ip in out["ips"]])
    assert [a[0] for a in addrs] == ["198.18.10.100/24", "198.18.10.101/24", "198.18.11.50/24"]
    assert [a[1] for a in addrs] == ["fd00:198:18::2/120", "fd00:198:18::3/120",
                                     "fd00:198:18::4/120"]
    code, out = add(OURS, conf(tmp_path / "x"), "d", cni_args="IgnoreUnknown=1;IP=198.18.9.5")
    assert code == 0 and out["ips"][0]["address"] == "198.18.9.5/29"
    code, out = add(OURS, conf(tmp_path / "x"), "e", cni_args="IP=198.18.9.5")
    assert code == 1 and "not available" in out["msg"]


@pytest.mark.parametrize("ipam, needle", [
    ({"ranges": [[{"subnet": "198.18.9.1/24"}]]}, "host bits"),
    ({"ranges": [[{"subnet": "198.18.9.0/31"}]]}, "too small"),
    ({"ranges": [[{"subnet": "198.18.9.0/24", "rangeStart": "198.18.10.1"}]]}, "rangeStart"),
    ({"ranges": [[{"subnet": "198.18.9.0/24"}], [{"subnet": "198.18.9.0/25"}]]}, "overlaps"),
    ({"ranges": []}, "no IP ranges"),
    ({"ranges": [[{"subnet": "nonsense"}]]}, "subnet"),
])
def test_invalid_ipam_config_is_error_7_and_allocates_nothing(tmp_path, ipam, needle):
    code, out = add(OURS, conf(tmp_path, **ipam), "a")
    assert code == 1 and out["code"] == 7 and needle in out["msg"], out
    assert not any(n[0].isdigit() for n in os.listdir(tmp_path / "hlnet")) \
        if (tmp_path / "hlnet").exists() else True


def test_check_gc_and_status(tmp_path):
    c = conf(tmp_path, "1.1.0")
    for cid in ("a", "b", "c"):
        assert add(OURS, c, cid)[0] == 0
    assert exec_plugin(OURS, "CHECK", c, "a", "/x", "eth0")[0] == 0
    code, out = exec_plugin(OURS, "CHECK", c, "zz", "/x", "eth0")
    assert code == 1 and "failed to find address" in out["msg"]
    gc = dict(c, **{"cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth0"}]})
    assert exec_plugin(OURS, "GC", gc) == (0, None)
    assert sorted(n for n in os.listdir(tmp_path / "hlnet") if n[0].isdigit()) == ["198.18.9.3"]
    assert exec_plugin(OURS, "STATUS", c) == (0, None)
    for cid in ("d", "e", "f", "g"):
        assert add(OURS, c, cid)[0] == 0
    code, out = exec_plugin(OURS, "STATUS", c)
    assert code == 1 and out["code"] == 50




def test_duplicates_at_once_leave_one_address_at_most(tmp_path):
    """The duplicate check runs after the lock: of ADDs of one attachment at the same time,
    the ones that see another's address fail and release their own; one address at most is
    left, and ADDs of other containers meanwhile keep theirs."""
    from concurrent.futures import ThreadPoolExecutor

    c = conf(tmp_path, ranges=[[{"subnet": "198.18.9.0/27"}]])
    ids = ["dup"] * 6 + [f"other{i}" for i in range(6)]
    with ThreadPoolExecutor(len(ids)) as pool:
        codes = list(pool.map(lambda cid: add(OURS, c, cid)[0], ids))
    held: dict[str, int] = {}
    for name in os.listdir(tmp_path / "hlnet"):
        if name[0].isdigit():
            with open(tmp_path / "hlnet" / name, newline="") as f:
                owner = f.read().split("\r\n")[0]
            held[owner] = held.get(owner, 0) + 1
    assert codes[6:] == [0] * 6 and all(held[f"other{i}"] == 1 for i in range(6))
    assert held.get("dup", 0) == codes[:6].count(0) <= 1
