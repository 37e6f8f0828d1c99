"""The REST client against the real pyapiserver: Status errors as ApiError, and a watch that
another thread closes (the kubelet's stop) ending without an error of its own."""
from __future__ import annotations

import threading

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient, Unavailable
from kubeapi.status import ApiError


@pytest.fixture
def client(api_server):
    c = ApiClient(kubeconfig.load(api_server.kubeconfig), "kubeapi-tests")
    yield c
    c.close()


def test_a_status_answer_is_an_api_error(client):
    with pytest.raises(ApiError) as missing:
        client.get("/api/v1/namespaces/default/pods/nowhere")
    assert (missing.value.code, missing.value.reason) == (404, "NotFound")
    assert str(missing.value) == '404 NotFound: pods "nowhere" not found'


def test_a_stopped_api_server_is_unavailable(api_server, client):
    api_server.stop()
    with pytest.raises(Unavailable) as down:
        client.get("/api/v1/namespaces")
    assert down.value.code == 0


def test_closing_a_watch_from_another_thread_ends_it_quietly(client):
    """close() races the reader's chunked read: the iteration ends, never with an error
    (http.client's AttributeError once killed the kubelet's pod watch at SIGTERM)."""
    for _ in range(40):
        watch = client.watch("/api/v1/pods")
        outcome: list[object] = []
        reading = threading.Event()

        def read() -> None:
            reading.set()
            try:
                outcome.extend(watch)
                outcome.append("ended")
            except BaseException as e:  # noqa: BLE001 - what the test looks for
                outcome.append(e)

        reader = threading.Thread(target=read)
        reader.start()
        reading.wait()
        watch.close()
        reader.join()
        assert outcome[-1] == "ended", outcome


def test_kept_alive_connections_the_server_closed_are_replaced(api_server, client):
    """A restarted server closed every kept-alive connection while they sat idle: the next
    request goes out again on a new connection, as Go's transport does, instead of failing."""
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(client.get("/api/v1/namespaces")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4
    api_server.stop()
    api_server.start()
    for _ in range(4):
        assert client.get("/api/v1/namespaces")["kind"] == "NamespaceList"
