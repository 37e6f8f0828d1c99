"""Delete propagation finalizers, the scale view and workload Table rows as plain functions
(no server)."""
from __future__ import annotations

import pytest

from apiserver.registry import propagation
from apiserver.registry.workloads import scale
from apiserver.rest.tables.table import to_table
from kubeapi.status import ApiError


@pytest.mark.parametrize("current,options,default,expected", [
    ([], {}, "Background", []),
    ([], {}, "Orphan", ["orphan"]),
    (["orphan"], {}, "Background", ["orphan"]),            # the object's finalizer decides
    (["x", "orphan"], {"propagationPolicy": "Background"}, "Orphan", ["x"]),
    (["orphan"], {"propagationPolicy": "Foreground"}, "Background", ["foregroundDeletion"]),
    ([], {"orphanDependents": True}, "Background", ["orphan"]),
    (["foregroundDeletion"], {"orphanDependents": False}, "Orphan", []),
])
def test_finalizers_after_delete(current, options, default, expected):
    assert propagation.finalizers_after_delete(current, options, default) == expected


def test_conflicting_delete_options_refused():
    with pytest.raises(ApiError) as e:
        propagation.finalizers_after_delete([], {"propagationPolicy": "Orphan",
                                                 "orphanDependents": True}, "Background")
    assert e.value.code == 422 and e.value.message == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Orphan": '
        'orphanDependents and deletionPropagation cannot be both set')


def test_scale_view_and_update():
    dep = {"metadata": {"name": "d", "namespace": "n", "uid": "u", "resourceVersion": "7"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
           "status": {"replicas": 1}}
    view = scale.to_scale(dep)
    assert view["spec"] == {"replicas": 2}
    assert view["status"] == {"replicas": 1, "selector": "app=web"}
    assert scale.from_scale(dep, {"spec": {"replicas": 0}})["spec"]["replicas"] == 0
    with pytest.raises(ApiError) as e:
        scale.from_scale(dep, {"spec": {"replicas": "many"}})
    assert e.value.message.startswith('Scale.autoscaling "d" is invalid: spec.replicas')


def test_job_and_cronjob_rows():
    job = {"metadata": {"name": "j", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"parallelism": 3, "template": {"spec": {"containers": [
               {"name": "a", "image": "busybox"}]}}},
           "status": {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
                      "completionTime": "2026-01-01T00:01:05Z",
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    cells = to_table("jobs", [job])["rows"][0]["cells"]
    assert cells[:4] == ["j", "Complete", "1/1 of 3", "65s"]
    cj = {"metadata": {"name": "c"}, "spec": {"schedule": "@hourly", "timeZone": "Etc/UTC",
                                              "suspend": True},
          "status": {"active": [{"name": "c-1"}]}}
    assert to_table("cronjobs", [cj])["rows"][0]["cells"][:6] == [
        "c", "@hourly", "Etc/UTC", "True", 1, "<none>"]
