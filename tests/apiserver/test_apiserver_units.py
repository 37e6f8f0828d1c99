"""Pure logic: the SQLite revision log, patches, selectors. No server, no root."""
from __future__ import annotations

import pytest

from apiserver.patch.apply import apply
from apiserver.patch.field_manager import Request
from apiserver.patch.json_patch import json_patch
from apiserver.patch.strategic_merge import strategic_merge
from apiserver.storage import Compacted, KeyExists, RevisionConflict
from apiserver.storage.sqlite import SQLiteStorage
from kubeapi.selector_strings import parse_field_selector, parse_label_selector
from kubeapi.status import ApiError


def test_revision_log_lists_at_past_revisions_and_replays(tmp_path):
    s = SQLiteStorage(str(tmp_path / "db"))
    seen = []
    s.subscribe(seen.append)
    a = s.create("/r/a", b"1")
    s.create("/r/b", b"1")
    mid = s.current_revision()
    s.update("/r/a", b"2", a.rev)
    s.delete("/r/b")
    with pytest.raises(KeyExists):
        s.create("/r/a", b"x")
    with pytest.raises(RevisionConflict):
        s.update("/r/a", b"3", a.rev)
    now, rev = s.list("/r/")
    assert [(r.key, r.value) for r in now] == [("/r/a", b"2")] and rev == 4
    past, rev = s.list("/r/", revision=mid)
    assert [(r.key, r.value) for r in past] == [("/r/a", b"1"), ("/r/b", b"1")] and rev == mid
    assert [(e.type, e.key, e.prev) for e in s.events_since(mid)] == [
        ("MODIFIED", "/r/a", b"1"), ("DELETED", "/r/b", b"1")]
    assert [e.rev for e in seen] == [1, 2, 3, 4]
    s.compact(3)
    with pytest.raises(Compacted):
        s.events_since(2)
    with pytest.raises(Compacted):
        s.list("/r/", revision=2)
    assert [(r.key, r.value) for r in s.list("/r/", revision=3)[0]] == [("/r/a", b"2"),
                                                                        ("/r/b", b"1")]
    s.close()
    reopened = SQLiteStorage(str(tmp_path / "db"))
    assert reopened.current_revision() == 4 and reopened.create("/r/c", b"").rev == 5


def test_strategic_merge_directives():
    live = {"spec": {"containers": [{"name": "a", "image": "1", "env": [{"name": "X"}]},
                                    {"name": "b", "image": "1"}],
                     "tolerations": [{"key": "t"}]},
            "metadata": {"finalizers": ["f1"]}}
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"},
                                     {"name": "c", "image": "2"},
                                     {"name": "a", "env": [{"name": "Y", "value": "y"}]}],
                      "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                      "tolerations": [{"key": "u"}]},
             "metadata": {"finalizers": ["f2"]}}
    out = strategic_merge(live, patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a"]
    assert out["spec"]["containers"][1]["env"] == [{"name": "X"}, {"name": "Y", "value": "y"}]
    assert out["spec"]["tolerations"] == [{"key": "u"}]  # atomic list: replaced
    assert out["metadata"]["finalizers"] == ["f1", "f2"]  # primitive set: merged
    assert strategic_merge(live, {"spec": {"$patch": "replace", "x": 1}})["spec"] == {"x": 1}
    assert strategic_merge(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}}
                           )["metadata"]["finalizers"] == []
    with pytest.raises(ApiError):
        strategic_merge(live, {"spec": {"containers": [{"image": "no-name"}]}})


def test_json_patch_is_atomic_and_apply_tracks_fields():
    doc = {"a": [1, 2]}
    assert json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                            {"op": "move", "from": "/a/0", "path": "/b"}]) == {"a": [2, 3],
                                                                                 "b": 1}
    with pytest.raises(ApiError) as e:
        json_patch(doc, [{"op": "remove", "path": "/a/0"}, {"op": "remove", "path": "/zz"}])
    assert e.value.code == 422 and doc == {"a": [1, 2]}
    who = Request("m", "v1", "ConfigMap")
    cm = {"apiVersion": "v1", "kind": "ConfigMap"}
    first = apply(None, {**cm, "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}}, who,
                  "t")
    first["metadata"]["labels"]["other"] = "kept"  # written by someone else
    second = apply(first, {**cm, "metadata": {"name": "x", "labels": {"a": "1"}}}, who, "t")
    assert second["metadata"]["labels"] == {"a": "1", "other": "kept"}
    assert second["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:a": {}}}}


def test_selectors():
    match = parse_label_selector("app in (a, b),!legacy,tier!=db,env")
    assert match({"app": "a", "env": "x"}) and not match({"app": "c", "env": "x"})
    assert not match({"app": "a", "env": "x", "legacy": ""})
    with pytest.raises(ApiError):
        parse_label_selector("app in (a")
    fields = parse_field_selector("spec.nodeName=n1,status.phase!=Failed",
                                  {"spec.nodeName", "status.phase"})
    assert fields({"spec.nodeName": "n1", "status.phase": "Running"})
