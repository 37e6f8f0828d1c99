"""The informer against the real pyapiserver: paged list, watch events into the cache and the
handlers, indexes, selectors, resync, a handler added late, relist after 410 Gone, stop()."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from controllers_testlib import Recorder, start_recording, wait_for
from kubeapi import kubeconfig
from kubeapi.informer import (DeletedFinalStateUnknown, InformerFactory, Informer, object_key,
                              resource_path)
from kubeapi.restclient import ApiClient


MINE = "made-by=informer-test"  # leaves out what the server puts in namespaces (kube-root-ca.crt)


def cm(name: str, labels: dict | None = None, data: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {"made-by": "informer-test", **(labels or {})}},
            "data": data or {}}


def test_list_watch_cache_and_handlers(client, namespace):
    path = resource_path("", "v1", "configmaps", namespace)
    for i in range(7):
        client.create(path, cm(f"pre-{i}", {"tier": "a" if i % 2 else "b"}))
    informer = Informer(client, path, label_selector=MINE, page_size=3)
    informer.add_indexer("tier", lambda o: [(o["metadata"].get("labels") or {}).get("tier", "")])
    rec = start_recording(informer)
    try:
        assert informer.wait_for_sync(15)
        assert informer.lists == 1
        assert sorted(informer.store.keys()) == sorted(f"{namespace}/pre-{i}" for i in range(7))
        assert len(informer.store.by_index("tier", "a")) == 3
        assert len(informer.store.by_index("namespace", namespace)) == 7
        wait_for(lambda: all(rec.seen("add", f"pre-{i}") for i in range(7)), what="adds")

        client.create(path, cm("new", {"tier": "a"}))
        client.patch(f"{path}/pre-1", {"metadata": {"labels": {"tier": "c"}}})
        client.delete(f"{path}/pre-2")
        wait_for(lambda: rec.seen("add", "new"), what="add of new")
        old, new = wait_for(lambda: rec.seen("update", "pre-1"), what="update")[0]
        assert old["metadata"]["labels"]["tier"] == "a"
        assert new["metadata"]["labels"]["tier"] == "c"
        deleted = wait_for(lambda: rec.seen("delete", "pre-2"), what="delete")[0]
        assert deleted["metadata"]["name"] == "pre-2"
        assert informer.store.get(f"{namespace}/pre-2") is None
        assert informer.store.get(f"{namespace}/new") is not None
        assert {o["metadata"]["name"] for o in informer.store.by_index("tier", "a")} == \
            {"pre-3", "pre-5", "new"}
        assert [o["metadata"]["name"] for o in informer.store.by_index("tier", "c")] == ["pre-1"]
    finally:
        informer.stop()
    assert not [t for t in informer._threads if t.is_alive()]


def test_label_selector_and_shared_factory(client, namespace):
    path = resource_path("", "v1", "configmaps", namespace)
    factory = InformerFactory(client)
    picked = factory.informer(path, label_selector="app=x")
    assert factory.informer(path, label_selector="app=x") is picked
    assert factory.informer(path, label_selector="app=x",
                            field_selector="metadata.name=a") is not picked
    everything = factory.informer(path)
    assert everything is not picked
    client.create(path, cm("a", {"app": "x"}))
    client.create(path, cm("b", {"app": "y"}))
    factory.start()
    try:
        assert factory.wait_for_sync(15)
        assert picked.store.keys() == [f"{namespace}/a"]
        # An object that stops matching leaves the selected cache as a delete.
        rec = Recorder()
        picked.add_event_handler(**rec.handlers())
        wait_for(lambda: rec.seen("add", "a"), what="late handler's add")
        client.patch(f"{path}/a", {"metadata": {"labels": {"app": "z"}}})
        wait_for(lambda: rec.seen("delete", "a"), what="delete on selector change")
        assert picked.store.keys() == []
        wait_for(lambda: {f"{namespace}/a", f"{namespace}/b"} <= set(everything.store.keys()),
                 what="unselected informer keeps both")
    finally:
        factory.stop()


def test_resync_redelivers_updates(client, namespace):
    path = resource_path("", "v1", "configmaps", namespace)
    client.create(path, cm("r"))
    informer = Informer(client, path, label_selector=MINE, resync=0.3)
    rec = start_recording(informer)
    try:
        updates = wait_for(lambda: len(rec.seen("update", "r")) >= 2 and rec.seen("update", "r"),
                           what="resync updates")
        old, new = updates[0]
        assert old is new  # a resync: the same cached object as old and new
    finally:
        informer.stop()


def _force_compaction(server) -> None:
    """What a compaction of the history looks like to a watch: kine's meta row, set while the
    server is down (it reads it at start)."""
    db = sqlite3.connect(f"{server.data_dir}/state.db")
    try:
        rev = db.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()[0]
        db.execute("UPDATE meta SET value=? WHERE name='compacted'", (rev + 1,))
        db.commit()
    finally:
        db.close()


@contextlib.contextmanager
def _default_configmaps(server, *names: str) -> Iterator[tuple]:
    """A client of the server of its own, the ConfigMaps `names` made in default, and a synced
    informer of default's ConfigMaps recording its events; both stopped when the block ends."""
    client = ApiClient(kubeconfig.load(server.kubeconfig), "controllers-tests")
    path = resource_path("", "v1", "configmaps", "default")
    for name in names:
        client.create(path, cm(name))
    informer = Informer(client, path, label_selector=MINE)
    rec = start_recording(informer)
    try:
        assert informer.wait_for_sync(15)
        yield client, path, informer, rec
    finally:
        informer.stop()
        client.close()


def test_relist_after_410_gone(own_server):
    with _default_configmaps(own_server, "before") as (client, path, informer, rec):
        own_server.stop()
        _force_compaction(own_server)
        own_server.start()
        client.close()
        client.create(path, cm("after"), retries=5)
        wait_for(lambda: informer.lists >= 2, timeout=60, what="relist after 410")
        wait_for(lambda: informer.store.get("default/after"), what="object created after")
        assert informer.store.get("default/before") is not None


def test_relist_reconciles_missed_deletes(own_server):
    """An object deleted while the informer could not watch: after a 410 its relist hands
    handlers a DeletedFinalStateUnknown tombstone."""
    with _default_configmaps(own_server, "gone") as (client, path, informer, rec):
        own_server.stop()
        db = sqlite3.connect(f"{own_server.data_dir}/state.db")
        try:  # the delete the informer never hears of, as kine would record it
            db.execute("DELETE FROM current WHERE key=?", ("/registry/configmaps/default/gone",))
            db.commit()
        finally:
            db.close()
        _force_compaction(own_server)
        own_server.start()
        tomb = wait_for(lambda: rec.seen("delete", "gone"), timeout=60, what="tombstone")[0]
        assert isinstance(tomb, DeletedFinalStateUnknown)
        assert tomb.key == "default/gone" and object_key(tomb.obj) == "default/gone"


def test_server_restart_resumes_the_watch_without_relisting(own_server):
    with _default_configmaps(own_server) as (client, path, informer, rec):
        own_server.restart()
        client.close()
        client.create(path, cm("after-restart"), retries=5)
        wait_for(lambda: rec.seen("add", "after-restart"), timeout=60, what="resumed watch")
        assert informer.lists == 1  # resumed from its resourceVersion: no second list
