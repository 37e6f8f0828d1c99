"""LISTs and watch events served from the stored bytes (issue 28) say what the decoding path
says: the same objects, as parsed JSON, with every selector, page, continue token and
resourceVersion, and rows of an old database whose metadata is not first. No server, no root."""
from __future__ import annotations

import json

import pytest

from apiserver import resources
from apiserver.registry.store import Store, decode, encode, stored_json
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.watch import Codec, WatchHub, everything, stream
from apiserver.watchcache import WatchCache

OLD_ORDER = b'{"spec":{"template":{"metadata":{"name":"inner"}}},"metadata":{"name":"old-%d",' \
    b'"namespace":"default","labels":{"app":"%s"}},"apiVersion":"v1","kind":"ConfigMap"}'


@pytest.fixture
def stores(tmp_path):
    storage = WatchCache(SQLiteStorage(str(tmp_path / "state.db")))
    yield storage, {plural: Store(storage, resources.find("", "v1", plural), lambda ns, c: None)
                    for plural in ("configmaps", "events")}
    storage.close()


def both(store: Store, namespace: str, **options) -> tuple[list, list, int, str]:
    objects = store.list(namespace, **options)
    encoded = store.list_json(namespace, **options)
    assert (encoded.revision, encoded.continue_token) == \
        (objects.revision, objects.continue_token)
    return objects.items, [json.loads(item) for item in encoded.items], objects.revision, \
        objects.continue_token


def test_list_json_equals_decoded_list(stores):
    storage, by_plural = stores
    configmaps = by_plural["configmaps"]
    for i in range(30):
        configmaps.create("default", {"metadata": {"name": f"cm-{i:02}",
                                                   "labels": {"app": "ab"[i % 2]}},
                                      "data": {"i": str(i), "quote": 'a "metadata":{ b'}})
    for i in range(5):  # rows written before metadata came first
        storage.create(f"/registry/configmaps/default/old-{i}",
                       OLD_ORDER % (i, (b"a", b"b")[i % 2]))
    configmaps.create("other", {"metadata": {"name": "elsewhere"}})
    for i in range(0, 30, 3):
        configmaps.update("default", f"cm-{i:02}", {"metadata": {"name": f"cm-{i:02}",
                                                                 "labels": {"app": "c"}}})
    by_plural["events"].create("default", {
        "metadata": {"name": "ev"}, "involvedObject": {"kind": "Pod", "resourceVersion": "1"},
        "reason": "Tested"})
    exact = storage.current_revision()
    configmaps.delete("default", "cm-01")
    configmaps.create("default", {"metadata": {"name": "cm-late"}})

    objects, encoded, revision, _ = both(configmaps, "default")
    assert objects == encoded and len(objects) == 35 and revision == storage.current_revision()
    assert all(o["metadata"]["resourceVersion"] for o in encoded)
    assert both(configmaps, "")[0] == both(configmaps, "")[1]
    assert both(by_plural["events"], "default")[:2] == \
        ([decode(storage.get("/registry/events/default/ev").value,
                 storage.get("/registry/events/default/ev").rev)],) * 2
    for label, field in (("app=a", ""), ("app in (b,c)", ""), ("", "metadata.name=cm-04"),
                         ("app!=c", "metadata.name!=old-1")):
        objects, encoded, _, _ = both(configmaps, "default", label_selector=label,
                                      field_selector=field)
        assert objects == encoded and objects
    at_exact, encoded_exact, rev, _ = both(configmaps, "default", resource_version=str(exact),
                                           resource_version_match="Exact")
    assert rev == exact and at_exact == encoded_exact
    assert {o["metadata"]["name"] for o in encoded_exact} >= {"cm-01"}
    assert "cm-late" not in {o["metadata"]["name"] for o in encoded_exact}

    for label in ("", "app=b"):
        pages, token = [], ""
        while True:
            objects, encoded, _, token = both(configmaps, "default", limit=4,
                                              label_selector=label, continue_token=token)
            assert objects == encoded
            pages += encoded
            if not token:
                break
        assert pages == both(configmaps, "default", label_selector=label)[1]


def test_stored_json_splices_or_falls_back():
    for obj in ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {}},
                {"spec": {"template": {"metadata": {}}}, "metadata": {}, "kind": "X"},
                {"kind": "Event", "metadata": {"name": "e"},
                 "involvedObject": {"resourceVersion": "3"}},
                {"data": 1}):
        value = encode(obj)
        assert json.loads(stored_json(value, 42)) == decode(value, 42)
    assert encode({"spec": {"x": {}}, "metadata": {"name": "n"}}).startswith(b'{"metadata":')


def test_watch_events_encoded_once_and_decoded_only_for_selectors(stores, monkeypatch):
    storage, by_plural = stores
    decoded: list[int] = []

    def counting_decode(value: bytes, rev: int) -> dict:
        decoded.append(rev)
        return decode(value, rev)

    hub = WatchHub(storage, Codec(counting_decode, stored_json))
    all_, selected = hub.open("/registry/configmaps/"), hub.open("/registry/configmaps/")
    configmaps = by_plural["configmaps"]
    start = storage.current_revision()
    for i in range(5):
        configmaps.create("default", {"metadata": {"name": f"w{i}", "labels": {"n": str(i)}}})
    configmaps.delete("default", "w0")

    def sent(watcher, matches, count: int) -> list[tuple[str, object]]:
        out = []
        for item in stream(hub, watcher, [], start, matches, 5.0, lambda: len(out) >= count):
            if isinstance(item, int):
                break
            out += item
        return out

    everything_sent = sent(all_, everything, 6)
    assert not decoded, "no selector, no decode"
    assert [k for k, _ in everything_sent] == ["ADDED"] * 5 + ["DELETED"]
    revs = [ev.rev for _, ev in everything_sent]
    assert revs == sorted(revs) and len(set(revs)) == 6
    for kind, ev in everything_sent:
        line = ev.encoded(kind)
        assert ev.encoded(kind) is line  # built once, the same bytes for every watcher
        assert json.loads(line) == {"type": kind, "object": ev.obj}
    matches = configmaps.matcher("n in (0,3)", "")
    assert configmaps.matcher("n in (0,3)", "") is matches  # shared, and so its answers
    assert [(k, ev.key) for k, ev in sent(selected, matches, 3)] == [
        ("ADDED", "/registry/configmaps/default/w0"), ("ADDED", "/registry/configmaps/default/w3"),
        ("DELETED", "/registry/configmaps/default/w0")]
    all_.close()
    selected.close()
