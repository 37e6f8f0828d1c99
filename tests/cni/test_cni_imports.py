"""What a plugin process imports, a structure test (issue 26): a plugin starts for every
command on every pod, so VERSION is answered by the protocol code alone, and no command pulls
in the modules that cost a plugin's start most (re and enum through json or socket, threading,
hashlib's OpenSSL, pyroute2). Each plugin runs by exec under `-X importtime`; the interpreter's
own start-up imports (site) are left out."""
import json
import os
import subprocess
import sys

import pytest

from netkit import CNI_PATH, VENV_BIN, random_subnet

PLUGINS = ("bridge", "host-local", "loopback", "portmap")
VERSION_PATH = {"__future__", "_json", "cni", "cni.skel", "cni.jsonio", "cni.names",
                "cni.errors", "cni.version", "cni.exec"}
HEAVY = {"re", "enum", "json", "socket", "threading", "hashlib", "_hashlib", "pyroute2",
         "subprocess", "logging", "typing"}


def _imports(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "imported package" not in line}


def interpreter_start(env: dict) -> set[str]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], env=env,
                         capture_output=True, text=True, check=True)
    return _imports(run.stderr)


def run_plugin(plugin: str, command: str, conf: dict, netns: str = "") -> tuple[dict, set]:
    """(stdout as JSON or {}, modules it imported beyond the interpreter's start-up)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": "imports", "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
           "CNI_PATH": ":".join(CNI_PATH)}
    run = subprocess.run([sys.executable, "-X", "importtime",
                          os.path.join(VENV_BIN, f"pycni-{plugin}")],
                         input=json.dumps(conf).encode(), env=env, capture_output=True,
                         timeout=60)
    out = json.loads(run.stdout) if run.stdout.strip() else {}
    assert run.returncode == 0, out
    return out, _imports(run.stderr.decode()) - interpreter_start(env)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_version_imports_only_the_protocol_code(plugin):
    out, imported = run_plugin(plugin, "VERSION", {"cniVersion": "1.0.0"})
    assert out["cniVersion"] == "1.0.0"
    assert imported <= VERSION_PATH, imported - VERSION_PATH


@pytest.mark.root
def test_add_and_del_import_nothing_heavy(tmp_path, namespaces, bridge_name, network_name):
    pod = namespaces.new()
    name = network_name()
    bridge = {"cniVersion": "1.0.0", "name": name, "type": "pycni-bridge",
              "bridge": bridge_name, "isGateway": True, "ipMasq": True,
              "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": random_subnet()}]],
                       "dataDir": str(tmp_path / "ipam")}}
    portmap = {"cniVersion": "1.0.0", "name": name, "type": "pycni-portmap",
               "runtimeConfig": {"portMappings": [{"hostPort": 18997, "containerPort": 80,
                                                   "protocol": "tcp"}]}}
    loopback = {"cniVersion": "1.0.0", "name": name, "type": "pycni-loopback"}
    # host-local on its own, beside the allocation the bridge's delegation holds
    own_ipam = dict(bridge, ipam=dict(bridge["ipam"], dataDir=str(tmp_path / "own-ipam")))
    seen = {}
    try:
        result, seen["bridge ADD"] = run_plugin("bridge", "ADD", bridge, pod)
        portmap["prevResult"] = result
        _, seen["portmap ADD"] = run_plugin("portmap", "ADD", portmap, pod)
        _, seen["loopback ADD"] = run_plugin("loopback", "ADD", loopback, pod)
        _, seen["host-local ADD"] = run_plugin("host-local", "ADD", own_ipam, pod)
    finally:
        _, seen["host-local DEL"] = run_plugin("host-local", "DEL", own_ipam, pod)
        _, seen["loopback DEL"] = run_plugin("loopback", "DEL", loopback, pod)
        _, seen["portmap DEL"] = run_plugin("portmap", "DEL", portmap, pod)
        _, seen["bridge DEL"] = run_plugin("bridge", "DEL", bridge, pod)
    assert {what: imported & HEAVY for what, imported in seen.items()} == \
        {what: set() for what in seen}
