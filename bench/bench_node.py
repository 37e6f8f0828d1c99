"""What the kubelet benches share: a node set up as the kubelet tests set one up (a real
pyapiserver with an admin and a node token, a started pykubelet on that node with busybox:1.36
in its image store), removed after.

The bench scripts run from bench/ with the repository and tests/kubelet (kubelet_testlib) on
their path before they import this module."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from kubelet_testlib import Api, KubeletProcess
from testlib.images import make_image_store
from testlib.pyapiserver import Server

@dataclass
class BenchNode:
    base: str                   # a temporary directory, removed after
    node: str
    server: Server
    api: Api
    kubelet: KubeletProcess


@contextmanager
def bench_node(prefix: str, kubelet_config: dict | None = None) -> Iterator[BenchNode]:
    """A started pyapiserver and pykubelet (with these KubeletConfiguration fields) in a new
    temporary directory named with prefix; the kubelet cleaned up and the server stopped after."""
    base = tempfile.mkdtemp(prefix=prefix)
    server = kubelet = None
    try:  # from here on: a server that does not start leaves no directory behind
        node, node_token = f"bench-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        token_file = os.path.join(base, "tokens.csv")
        with open(token_file, "w") as f:
            f.write(f'{uuid.uuid4().hex},admin,uid-admin,"system:masters"\n')
            f.write(f'{node_token},system:node:{node},{node},"system:nodes"\n')
        server = Server(os.path.join(base, "api"), token_file)
        os.makedirs(server.data_dir)
        server.start()
        api = Api(server)
        kubelet = KubeletProcess(server, node, node_token, make_image_store(base),
                                 kubelet_config)
        kubelet.start()
        yield BenchNode(base, node, server, api, kubelet)
    finally:
        if kubelet is not None:
            kubelet.cleanup()
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)

