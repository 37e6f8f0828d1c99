"""What the API server and the kubelet share, as plain functions: quantities, the time format,
Status bodies, the protobuf wire format, pod defaulting and validation. No server, no root."""
from __future__ import annotations

import pytest

from kubeapi import protobuf, status, timefmt
from kubeapi.pod_defaulting import default_pod, qos_class
from kubeapi.pod_validation import validate_pod_spec
from kubeapi.quantity import parse_quantity


def test_quantities():
    assert parse_quantity("100m") * 10 == 1 and parse_quantity("1Gi") == 2**30
    assert parse_quantity("1e3") == 1000 and parse_quantity(2) == 2
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        parse_quantity("12XB")


def test_times_are_rfc3339_utc_seconds_and_read_back():
    assert timefmt.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert timefmt.rfc3339(1.9) == "1970-01-01T00:00:01Z"
    assert timefmt.micro(1.5) == "1970-01-01T00:00:01.500000Z"
    assert timefmt.rfc3339_ns(86_400 * 10**9) == "1970-01-02T00:00:00Z"
    assert timefmt.parse("1970-01-02T00:00:00Z") == 86_400
    assert timefmt.parse(timefmt.micro(7.25)) == 7.25


def test_status_errors_carry_the_body_clients_read():
    error = status.invalid("Pod", "p", [status.required("spec.containers")])
    assert str(error) == '422 Invalid: Pod "p" is invalid: spec.containers: Required value'
    body = error.status()
    assert (body["kind"], body["code"], body["reason"]) == ("Status", 422, "Invalid")
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired",
                                          "message": "Required value",
                                          "field": "spec.containers"}]
    assert status.not_found("pods", "p").status()["message"] == 'pods "p" not found'


def test_protobuf_envelope_decodes_a_namespace():
    meta = protobuf.length_delimited(1, b"team-a")
    type_meta = protobuf.length_delimited(1, b"v1") + protobuf.length_delimited(2, b"Namespace")
    namespace = protobuf.length_delimited(1, meta)
    body = protobuf.MAGIC + protobuf.length_delimited(1, type_meta) + \
        protobuf.length_delimited(2, namespace)
    assert protobuf.decode(body) == {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "team-a"}}
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"{}")


def test_pod_defaulting_and_validation():
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                    "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}}
    default_pod(pod)
    container = pod["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "64Mi"}
    assert qos_class(pod["spec"]) == "Guaranteed"
    assert validate_pod_spec(pod["spec"]) == []
    pod["spec"]["containers"][0]["name"] = "Not_A_Label"
    assert [e["field"] for e in validate_pod_spec(pod["spec"])] == \
        ["spec.containers[0].name"]
