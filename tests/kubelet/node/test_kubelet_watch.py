"""The pod source against an API server of the test's own whose connection dies mid-watch,
and the supervisor that restarts a kubelet thread that died, saying why. No root."""
from __future__ import annotations

import logging
import signal
import threading

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubelet.pods import Pod
from kubelet.sources.api import ApiPodSource
from kubelet.supervisor import supervise
from kubelet_testlib import pod_manifest, wait_for
from testlib.pyapiserver import start_server, stop_server

NODE = "watched-node"


class Handler:
    """What the pod source hands over: its lists and its watch events."""

    def __init__(self, fail_first_event: bool = False) -> None:
        self.lock = threading.Lock()
        self.lists: list[list[str]] = []
        self.events: list[tuple[str, str]] = []
        self.fail_first_event = fail_first_event

    def set_pods(self, source: str, pod_list: list[Pod]) -> None:
        with self.lock:
            self.lists.append(sorted(pod.name for pod in pod_list))

    def pod_event(self, source: str, kind: str, pod: Pod) -> None:
        if self.fail_first_event:
            self.fail_first_event = False
            # what http.client raised under the watch when a close raced its read
            raise AttributeError("'NoneType' object has no attribute 'close'")
        with self.lock:
            self.events.append((kind, pod.name))

    def listed(self) -> int:
        with self.lock:
            return len(self.lists)

    def saw(self, kind: str, name: str) -> bool:
        with self.lock:
            return (kind, name) in self.events


class Cluster:
    """An API server of the test's own, and pod sources of NODE on it, supervised as the kubelet
    runs them."""

    def __init__(self) -> None:
        self.server = start_server()
        self.client = ApiClient(kubeconfig.load(self.server.kubeconfig), "kubelet-tests")
        self.stop = threading.Event()
        self.sources: list[tuple[ApiPodSource, threading.Thread]] = []

    def run_source(self, handler: Handler) -> None:
        source = ApiPodSource(self.client, NODE, handler)
        self.sources.append((source, supervise("pod-source", source.run, self.stop)))

    def create_pod(self, name: str, namespace: str = "w") -> None:
        if self.client.get("/api/v1/namespaces", {"fieldSelector": f"metadata.name={namespace}"}
                           )["items"] == []:
            self.client.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        self.client.create(f"/api/v1/namespaces/{namespace}/pods",
                           pod_manifest(name, NODE, "sleep 1"), retries=5)

    def close(self) -> None:
        self.stop.set()
        for source, thread in self.sources:
            source.stop()
            thread.join()
        self.client.close()
        stop_server(self.server)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def test_the_watch_comes_back_after_the_api_server_connection_dies(cluster):
    handler = Handler()
    cluster.run_source(handler)
    wait_for(lambda: handler.listed() == 1, what="the first list")
    cluster.create_pod("before")
    wait_for(lambda: handler.saw("ADDED", "before"), what="the pod through the watch")
    lists = handler.listed()
    cluster.server.restart(signal.SIGKILL)     # every connection to it dies with it
    wait_for(lambda: handler.listed() > lists, timeout=60, what="the pods listed again")
    cluster.create_pod("after")
    wait_for(lambda: handler.saw("ADDED", "after"), what="a pod through the new watch")


def test_a_thread_that_dies_is_logged_and_restarted(cluster, caplog):
    caplog.set_level(logging.ERROR, logger="kubelet.supervisor")
    handler = Handler(fail_first_event=True)
    cluster.run_source(handler)
    wait_for(lambda: handler.listed() == 1, what="the first list")
    cluster.create_pod("kills")
    wait_for(lambda: handler.listed() == 2, what="the source started again, listing anew")
    assert handler.lists[-1] == ["kills"]
    died = [r for r in caplog.records if r.name == "kubelet.supervisor"]
    assert len(died) == 1
    assert died[0].getMessage().startswith("thread pod-source died; restarting it in ")
    assert "AttributeError: 'NoneType' object has no attribute 'close'" in caplog.text
    cluster.create_pod("later")
    wait_for(lambda: handler.saw("ADDED", "later"), what="the watch of the restarted source")
