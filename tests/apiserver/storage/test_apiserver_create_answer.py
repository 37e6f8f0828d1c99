"""A create's answer is the stored bytes with the resourceVersion spliced in (issue 28): it says
what the returned object and a later GET say, and the object is the store's own copy of the
body. No server, no root."""
from __future__ import annotations

import json

from apiserver import resources
from apiserver.registry.store import Store
from apiserver.request import json_response
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.watchcache import WatchCache


def test_create_answers_with_its_stored_json(tmp_path):
    storage = WatchCache(SQLiteStorage(str(tmp_path / "db")))
    try:
        pods = Store(storage, resources.find("", "v1", "pods"))
        configmaps = Store(storage, resources.find("", "v1", "configmaps"))
        body = {"metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "env": [
                    {"name": "E", "value": "v"}]}]}}
        created = pods.create("ns", body, manager="test")
        answer = json.loads(json_response(201, created).body)
        assert answer == created == pods.get("ns", "p")
        assert answer["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert answer["metadata"]["managedFields"][0]["manager"] == "test"
        # the store wrote its own copy: the caller's body is as it was sent
        assert body == {"metadata": {"name": "p", "labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i", "env": [
                            {"name": "E", "value": "v"}]}]}}
        created["spec"]["containers"][0]["env"].append({"name": "F"})
        assert pods.get("ns", "p")["spec"]["containers"][0]["env"] == [
            {"name": "E", "value": "v"}]

        # data before metadata, and a dry run (nothing stored: a plain answer)
        cm = configmaps.create("ns", {"data": {"k": "v"}, "metadata": {"name": "c"}})
        assert json.loads(json_response(201, cm).body) == cm == configmaps.get("ns", "c")
        dry = configmaps.create("ns", {"metadata": {"name": "d"}}, dry_run=True)
        assert json.loads(json_response(201, dry).body) == dry
    finally:
        storage.close()


def test_create_records_the_fields_of_each_create_as_computed_afresh(tmp_path):
    """managedFields come from a memo of recent creates: each create's are what record_update
    makes of that create alone, whether it was answered from the memo or not."""
    from apiserver.patch.field_manager import record_update
    from kubeapi import timefmt

    storage = WatchCache(SQLiteStorage(str(tmp_path / "db")))
    try:
        pods = Store(storage, resources.find("", "v1", "pods"))

        def pod(name: str, env: list[str], labels: dict | None = None) -> dict:
            return {"metadata": {"name": name, "labels": labels or {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "env": [
                        {"name": e, "value": "v"} for e in env]}]}}

        bodies = [pod("p1", ["A"]), pod("p2", ["A"]), pod("p3", ["A", "B"]),
                  pod("p4", ["A"], {"x": "y"}), pod("p5", ["A"]), pod("p6", [])]
        for i, body in enumerate(bodies):
            manager = "m2" if i == 4 else "m1"
            created = pods.create("ns", body, manager=manager)
            fresh = json.loads(json.dumps(created))
            fresh["metadata"].pop("managedFields")
            fresh["metadata"].pop("resourceVersion")
            requested = json.loads(json.dumps(body))
            requested["metadata"].update(
                {k: fresh["metadata"][k] for k in ("uid", "creationTimestamp", "namespace",
                                                    "generation")})
            requested.update(apiVersion="v1", kind="Pod")
            pods.strategy.default(requested)
            record_update(None, requested, pods.field_request(manager), timefmt.rfc3339())
            want = requested["metadata"]["managedFields"]
            got = pods.get("ns", body["metadata"]["name"])["metadata"]["managedFields"]
            assert [dict(e, time="") for e in got] == [dict(e, time="") for e in want]
            assert got[0]["manager"] == manager
        # a client's own entries are merged as before, not taken from the memo
        sent = pod("p7", ["A"])
        sent["metadata"]["managedFields"] = [{}]
        created = pods.create("ns", sent, manager="m1")
        assert created["metadata"]["managedFields"][0]["manager"] == "m1"
        # the memo's entries are not the created object's: changing one leaves the next as is
        created = pods.create("ns", pod("p8", ["A"]), manager="m1")
        created["metadata"]["managedFields"][0]["fieldsV1"].clear()
        again = pods.create("ns", pod("p9", ["A"]), manager="m1")
        assert again["metadata"]["managedFields"][0]["fieldsV1"]
    finally:
        storage.close()
