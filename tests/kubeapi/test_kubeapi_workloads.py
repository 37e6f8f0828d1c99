"""The workload pieces of kubeapi as plain functions: cron schedules with robfig/cron's error
texts, label selectors, field values as kube-apiserver prints them, workload defaulting and
validation, and the protobuf bodies of kubectl's typed clients. No server, no root."""
from __future__ import annotations

from datetime import datetime

import pytest

from kubeapi import cron, field_value, label_selector, protobuf
from kubeapi.protobuf_workloads import decode
from kubeapi.workload_defaulting import (default_cronjob, default_daemonset,
                                         default_deployment, default_job,
                                         default_statefulset, generate_job_selector)
from kubeapi.workload_validation import (validate_cronjob, validate_deployment,
                                         validate_deployment_update, validate_job,
                                         validate_pdb, validate_statefulset_update)


@pytest.mark.parametrize("spec,error", [
    ("bad", "expected exactly 5 fields, found 1: [bad]"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("", "empty spec string"),
])
def test_cron_errors_as_robfig(spec, error):
    with pytest.raises(cron.CronError) as e:
        cron.parse(spec)
    assert str(e.value) == error


def test_cron_next_activations():
    t = datetime(2026, 12, 6, 21, 12)
    assert cron.parse("*/5 * * * *").next_after(t) == datetime(2026, 12, 6, 21, 15)
    assert cron.parse("0 9 * * mon-fri").next_after(t) == datetime(2026, 12, 7, 9, 0)
    assert cron.parse("@monthly").next_after(t) == datetime(2027, 1, 1, 0, 0)
    assert cron.parse("@every 90s").next_after(t) == datetime(2026, 12, 6, 21, 13, 30)
    # day of month and day of week both restricted: either matches, as in cron
    assert cron.parse("0 0 13 * fri").next_after(t) == datetime(2026, 12, 11, 0, 0)


def test_label_selectors():
    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                {"key": "canary", "operator": "DoesNotExist"}]}
    assert label_selector.matches(sel, {"app": "web", "tier": "a"})
    assert not label_selector.matches(sel, {"app": "web", "tier": "a", "canary": "1"})
    assert not label_selector.matches(None, {"app": "web"})
    assert label_selector.matches({}, {"anything": "x"})
    assert label_selector.to_string(sel) == "app=web,!canary,tier in (a,b)"
    assert label_selector.format_selector(None) == "<none>"
    errors = label_selector.validate({"matchExpressions": [
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "b", "operator": "Near"}]}, "spec.selector")
    assert [e["message"] for e in errors] == [
        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'Invalid value: "Near": not a valid selector operator']


def test_field_values_render_as_go_json():
    assert field_value.render({"b": "2", "a": "<1>"}) == '{"a":"\\u003c1\\u003e","b":"2"}'
    assert field_value.render(None) == "null" and field_value.render(True) == "true"
    assert field_value.label_selector({"matchExpressions": [
        {"operator": "In", "key": "k", "values": ["v"]}], "matchLabels": {}}) == \
        '{"matchExpressions":[{"key":"k","operator":"In","values":["v"]}]}'
    assert field_value.owner_references([{"uid": "u", "name": "n", "kind": "K",
                                          "apiVersion": "v1", "controller": True}]) == \
        '[{"apiVersion":"v1","kind":"K","name":"n","uid":"u","controller":true}]'


def _template(labels=None, restart="Always"):
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "i"}]}}


def test_workload_defaults():
    dep = {"spec": {"template": _template()}}
    default_deployment(dep)
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": "25%", "maxSurge": "25%"}}
    assert dep["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    recreate = {"spec": {"strategy": {"type": "Recreate"}}}
    default_deployment(recreate)
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}
    ds = {"spec": {}}
    default_daemonset(ds)
    assert ds["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1,
                                                             "maxSurge": 0}
    sts = {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}
    default_statefulset(sts)
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Retain"}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    only_parallelism = {"spec": {"parallelism": 3}}
    default_job(only_parallelism)
    assert "completions" not in only_parallelism["spec"]
    indexed = {"spec": {"backoffLimitPerIndex": 1}}
    default_job(indexed)
    assert indexed["spec"]["backoffLimit"] == 2147483647
    cj = {"spec": {"jobTemplate": {"spec": {"template": _template(restart="Never")}}}}
    default_cronjob(cj)
    assert "completions" not in cj["spec"]["jobTemplate"]["spec"]  # jobTemplate stays as sent
    assert (cj["spec"]["successfulJobsHistoryLimit"], cj["spec"]["failedJobsHistoryLimit"]) == \
        (3, 1)


def test_job_selector_generated_unless_manual():
    job = {"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": _template()}}
    generate_job_selector(job)
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid":
                                                       "u1"}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"
    manual = {"metadata": {"name": "j", "uid": "u1"},
              "spec": {"manualSelector": True, "template": _template(restart="Never")}}
    generate_job_selector(manual)
    assert "selector" not in manual["spec"]
    default_job(manual)
    assert [e["message"] for e in validate_job(manual)] == ["Required value"]


def _messages(errors):
    return [f"{e['field']}: {e['message']}" for e in errors]


def test_deployment_validation():
    dep = {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": _template(),
                    "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
                    "minReadySeconds": 10, "progressDeadlineSeconds": 10}}
    default_deployment(dep)
    assert _messages(validate_deployment(dep)) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'",
        "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"]
    dep["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": "1x", "maxUnavailable": "30%"}}, progressDeadlineSeconds=600)
    assert _messages(validate_deployment(dep)) == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"1x\": a valid percent string "
        "must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used "
        "for validation is '[0-9]+%')"]
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1
    dep["spec"]["selector"] = {}
    assert _messages(validate_deployment(dep)) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
    old = {"spec": {**dep["spec"], "selector": {"matchLabels": {"app": "web"}}}}
    new = {"spec": {**old["spec"], "template": _template({"app": "web", "v": "2"})}}
    default_deployment(new)
    assert validate_deployment_update(new, old) == []


def test_statefulset_update_limits_and_cronjob_and_pdb():
    base = {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": _template(), "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"}, "serviceName": "a"}
    default_statefulset({"spec": base})
    errors = validate_statefulset_update({"spec": {**base, "serviceName": "b"}},
                                         {"spec": base})
    assert _messages(errors) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden"]
    cj = {"metadata": {"name": "x" * 53}, "spec": {
        "schedule": "TZ=UTC 0 * * * *", "concurrencyPolicy": "Allow",
        "jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}},
                                 "template": _template(restart="Never")}}}}
    default_cronjob(cj)
    assert _messages(validate_cronjob(cj)) == [
        f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters',
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
        'schedule, use timeZone field instead',
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` '
        'will be auto-generated']
    assert _messages(validate_pdb({"spec": {"maxUnavailable": -1,
                                            "unhealthyPodEvictionPolicy": "Never"}})) == [
        "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
        'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: '
        '"AlwaysAllow", "IfHealthyBudget"']


def _message(number: int, fields: list[bytes]) -> bytes:
    return protobuf.length_delimited(number, b"".join(fields))


def _string(number: int, text: str) -> bytes:
    return protobuf.length_delimited(number, text.encode())


def _varint(number: int, value: int) -> bytes:
    out, key = bytearray(), number << 3
    for n in (key, value & (2**64 - 1)):
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                break
    return bytes(out)


def test_protobuf_deployment_as_kubectl_sends_it():
    labels = protobuf.length_delimited(11, _string(1, "app") + _string(2, "web"))
    meta = _message(1, [_string(1, "web"), _string(2, ""), labels])
    container = _message(2, [_string(1, "busybox"), _string(2, "busybox"),
                             _string(13, ""), _message(8, []), _varint(16, 0)])
    template = _message(3, [_message(1, [labels]), _message(2, [container, _string(3, "")])])
    match_labels = protobuf.length_delimited(1, _string(1, "app") + _string(2, "web"))
    spec = _message(2, [_varint(1, 3), _message(2, [match_labels]), template, _message(4, []),
                        _varint(5, 0), _varint(7, 0)])
    body = protobuf.MAGIC + _message(1, [_string(1, "apps/v1"), _string(2, "Deployment")]) + \
        _message(2, [meta, spec, _message(3, [])])
    assert decode(body) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "busybox", "image": "busybox",
                                                       "resources": {}}]}},
                 "strategy": {}}}


def test_protobuf_eviction_and_budget():
    options = _message(2, [_varint(1, 0), _string(4, "Foreground")])
    body = protobuf.MAGIC + _message(1, [_string(1, "policy/v1"), _string(2, "Eviction")]) + \
        _message(2, [_message(1, [_string(1, "web-0")]), options])
    assert decode(body)["deleteOptions"] == {"gracePeriodSeconds": 0,
                                             "propagationPolicy": "Foreground"}
    percent = _message(1, [_varint(1, 1), _string(3, "50%")])
    body = protobuf.MAGIC + _message(1, [_string(1, "policy/v1"),
                                         _string(2, "PodDisruptionBudget")]) + \
        _message(2, [_message(1, [_string(1, "p")]), _message(2, [percent])])
    assert decode(body)["spec"] == {"minAvailable": "50%"}
    other = protobuf.MAGIC + _message(1, [_string(1, "v1"), _string(2, "Pod")]) + \
        _message(2, [])
    assert decode(other) is None
