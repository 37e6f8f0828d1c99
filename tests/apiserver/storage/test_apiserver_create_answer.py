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
