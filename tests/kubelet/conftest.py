"""Fixtures of the kubelet tests: the real pyapiserver with a token per node, an image store
holding busybox:1.36 (built from busybox-static, imported as `pycontainer image import` does),
and real pykubelet processes, each with everything of its own."""
from __future__ import annotations

import os
import uuid

import pytest

from kubelet_testlib import Api, KubeletProcess
from netkit import restore_host_networking  # noqa: F401
from testlib.images import image_store
from testlib.pyapiserver import Server

NODE_POOL = 64


class Nodes:
    """Node names with their tokens, handed out one per kubelet."""

    def __init__(self) -> None:
        prefix = "kt" + uuid.uuid4().hex[:6]
        self.free = [(f"{prefix}-{i}", uuid.uuid4().hex) for i in range(NODE_POOL)]

    def token_lines(self) -> str:
        return "".join(f'{token},system:node:{name},{name},"system:nodes"\n'
                       for name, token in self.free)

    def take(self) -> tuple[str, str]:
        return self.free.pop()


def _start_server(tmp_path_factory, nodes: Nodes) -> Server:
    data_dir = str(tmp_path_factory.mktemp("pyapiserver"))
    token_file = os.path.join(data_dir, "tokens.csv")
    with open(token_file, "w") as f:
        f.write(f'{uuid.uuid4().hex},admin,uid-admin,"system:masters"\n')
        f.write(nodes.token_lines())
    server = Server(data_dir, token_file)
    server.start()
    return server


@pytest.fixture(scope="session")
def nodes() -> Nodes:
    return Nodes()


@pytest.fixture(scope="session")
def api_server(tmp_path_factory, nodes):
    server = _start_server(tmp_path_factory, nodes)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api(api_server) -> Api:
    a = Api(api_server)
    yield a
    a.client.close()


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> str:
    with image_store(str(tmp_path_factory.mktemp("kubelet-images"))) as store_root:
        yield store_root


@pytest.fixture
def start_kubelet(api_server, nodes, image_root):
    """kubelet = start_kubelet(config={...}): a new pykubelet on its own node, with these
    KubeletConfiguration fields (standalone=True: without the API server; portmap=True: CNI
    forwards hostPorts); all cleaned up after."""
    made: list[KubeletProcess] = []

    def start(config: dict | None = None, standalone: bool = False,
              portmap: bool = False) -> KubeletProcess:
        name, token = nodes.take()
        k = KubeletProcess(api_server, name, token, image_root, config, standalone, portmap)
        made.append(k)
        k.start()
        return k

    yield start
    for k in made:
        k.cleanup()


@pytest.fixture(scope="module")
def kubelet(api_server, nodes, image_root):
    """A pykubelet shared by the tests of a module (each test uses its own namespace)."""
    name, token = nodes.take()
    k = KubeletProcess(api_server, name, token, image_root)
    try:
        k.start()
        yield k
    finally:
        k.cleanup()


@pytest.fixture
def namespace(api) -> str:
    return api.namespace()
