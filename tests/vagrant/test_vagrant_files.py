"""The Vagrant files without a VM: the Vagrantfile validates (`vagrant validate -p`, no provider or
box needed), the cluster CA it makes is one pyapiserver signs with, provision.sh refuses bad input
before it changes anything, the route daemon's unit runs a command the package installs with
flags it takes, and the busybox image it imports runs."""
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys

import pytest

from apiserver.server import ApiServer
from cni import hostgw
from overlay import snapshots
from overlay.store import Store
from vmlib import REPO

VAGRANT_DIR = REPO / "vagrant"
BIN = os.path.dirname(sys.executable)


def vagrant_validate(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["vagrant", "validate", "-p"], cwd=VAGRANT_DIR, capture_output=True,
                          text=True, env=dict(os.environ, VAGRANT_DOTFILE_PATH=str(tmp_path),
                                              **env))


@pytest.mark.slow
def test_vagrantfile_validates_for_one_and_three_nodes(tmp_path):
    for nodes, names in (("1", ["node1"]), ("3", ["node1", "node2", "node3"])):
        result = vagrant_validate(tmp_path, PYCONTAINER_NODES=nodes)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Vagrantfile validated successfully" in result.stdout
        assert [n for n in ("node1", "node2", "node3", "node4") if f"{n}:" in result.stdout] \
            == names


@pytest.mark.parametrize("setting, value, message", [
    ("PYCONTAINER_NODES", "two", 'PYCONTAINER_NODES: "two" is not a whole number'),
    ("PYCONTAINER_NODES", "12", "PYCONTAINER_NODES: 12 must be between 1 and 9"),
    ("PYCONTAINER_NETWORK", "10.0.0.0", "PYCONTAINER_NETWORK: 10.0.0.0 is not like 198.19.0"),
    ("PYCONTAINER_WHEELHOUSE", "/nonexistent", "PYCONTAINER_WHEELHOUSE: /nonexistent is not a "
                                               "directory"),
])
def test_bad_setting_is_named(tmp_path, setting, value, message):
    result = vagrant_validate(tmp_path, **{setting: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_cluster_ca_seeds_the_api_server(tmp_path):
    """The Vagrantfile's CA (made on the host, in Ruby) becomes pyapiserver's: a node that only
    has ca.crt verifies the server; a second `vagrant up` keeps the CA and the tokens."""
    secrets = tmp_path / "cluster"
    make = ["ruby", "-r", str(VAGRANT_DIR / "cluster_secrets.rb"), "-e",
            f'ClusterSecrets.ensure("{secrets}", %w[node1 node2])']
    subprocess.run(make, check=True)
    first = {p.name: p.read_bytes() for p in secrets.iterdir()}
    assert sorted(first) == ["ca.crt", "ca.key", "node1.token", "node2.token"]
    assert len(first["node1.token"]) == 32 and first["node1.token"] != first["node2.token"]
    assert oct(os.stat(secrets / "ca.key").st_mode & 0o777) == "0o600"
    subprocess.run(make, check=True)
    assert {p.name: p.read_bytes() for p in secrets.iterdir()} == first

    pki = tmp_path / "data" / "pki"
    pki.mkdir(parents=True)
    (pki / "ca.crt").write_bytes(first["ca.crt"])
    (pki / "ca.key").write_bytes(first["ca.key"])
    server = ApiServer(str(tmp_path / "data"), "127.0.0.1", 0)
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(secrets / "ca.crt"))
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                assert tls.getpeercert()["issuer"] == ((("commonName", "pycontainer-vagrant-ca"),),)
    finally:
        server.stop()


# Every case also names a wheelhouse that does not exist: should a case pass the check it is
# about, provision.sh still stops before it changes anything on this machine.
@pytest.mark.root
@pytest.mark.parametrize("args, message", [
    (["--node-name", "Node_1"], "--node-name: Node_1 is not a DNS name"),
    (["--pod-cidr", "198.18.1.0"], "--pod-cidr: 198.18.1.0 is not an IPv4 CIDR"),
    (["--api-server", "http://198.19.0.11:6443"], "--api-server: http://198.19.0.11:6443 must "
                                                  "be an https:// URL"),
    (["--api-server", "https://198.19.0.11:6443"], "--token: a joining node needs its token"),
    (["--api-server", "https://198.19.0.11:6443", "--token", "t"],
     "--ca-cert: a joining node needs the cluster's CA certificate"),
    (["--ca-cert", "/etc/hostname"], "--ca-cert and --ca-key: give both or neither"),
    (["--node-token", "node2"], "--node-token: node2 is not NAME=TOKEN"),
    (["--route-backend", "flannel"], "--route-backend: flannel is not host-gw or vxlan"),
    (["--node-ip"], "--node-ip: needs a value"),
    (["--colour", "blue"], "--colour: unknown option"),
    ([], "--wheelhouse: /nonexistent/wheels: no such directory"),
])
def test_provision_refuses_bad_input_with_one_line(args, message):
    result = subprocess.run([str(VAGRANT_DIR / "provision.sh"), "--wheelhouse",
                             "/nonexistent/wheels", *args], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"provision.sh: {message}")


def test_every_node_runs_the_route_daemon_with_flags_it_takes():
    """pycni-hostgw.service starts the console script with what provision.sh writes in its
    environment file, for both backends, and provision.sh installs and starts it on every node
    (after the branch of the control plane), with the node's podCIDR written on its Node."""
    unit = (VAGRANT_DIR / "systemd/pycni-hostgw.service").read_text()
    command = shlex.split(re.search(r"^ExecStart=((?:.*\\\n)*.*)$", unit, re.M)[1]
                          .replace("\\\n", " "))
    assert command[0] == "/opt/pycontainer/bin/pycni-hostgw"
    assert 'pycni-hostgw = "cni.hostgw:main"' in (REPO / "pyproject.toml").read_text()
    provision = (VAGRANT_DIR / "provision.sh").read_text()
    env = re.search(r'^HOSTGW_ARGS="(.*)"$', provision, re.M)[1]
    assert "EnvironmentFile=/etc/pycontainer/pycni-hostgw.env" in unit
    for backend in ("host-gw", "vxlan"):
        args = [a.replace("$HOSTGW_ARGS", "") for a in command[1:]] + shlex.split(
            env.replace("$node_name", "node2").replace("$route_backend", backend)
            .replace("$cluster_cidr", "198.18.0.0/16"))
        parsed = hostgw.parser().parse_args([a for a in args if a])
        assert (parsed.node_name, parsed.backend, parsed.ip_masq, parsed.cluster_cidr) == \
            ("node2", backend, True, "198.18.0.0/16")
    tail = provision[provision.index('step "pykubelet $node_name'):]
    assert "converge pycni-hostgw.service $changed" in tail
    assert '"ipMasq": false' in provision   # the daemon masquerades, pods keep their addresses
    assert re.search(r'patch node "\$node_name" .*podCIDR', provision, re.S)


@pytest.mark.root
def test_busybox_image_imports_and_runs(tmp_path):
    """The image provision.sh imports (no registry): same digest when built twice, and it runs."""
    env = dict(os.environ, PYCONTAINER_IMAGE_ROOT=str(tmp_path / "images"))
    digests = set()
    for attempt in ("a", "b"):
        subprocess.run([str(REPO / "scripts/busybox-image.sh"), str(tmp_path / attempt)],
                       check=True)
        out = subprocess.run([f"{BIN}/pycontainer", "image", "import", str(tmp_path / attempt),
                              "--name", "busybox:static"], env=env, check=True,
                             capture_output=True, text=True).stdout
        digests.add(out.split()[-1])
    assert len(digests) == 1
    state = tmp_path / "state"
    try:
        run = subprocess.run([f"{BIN}/pycontainer", "--root", str(state), "run",
                              "--image", "busybox:static", "--rm", "--", "sh", "-c",
                              "echo hello from $(busybox | head -1 | cut -d' ' -f1)"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stdout, run.stderr) == (0, "hello from BusyBox\n", "")
    finally:  # a `run --rm` that failed half-way may leave its container and mounted snapshot
        for container_id in os.listdir(state) if state.is_dir() else []:
            subprocess.run([f"{BIN}/pycontainer", "--root", str(state), "delete", "--force",
                            container_id], capture_output=True, timeout=60)
        store = Store(str(tmp_path / "images"))
        for key in snapshots.list_keys(store):
            snapshots.remove(store, key)
