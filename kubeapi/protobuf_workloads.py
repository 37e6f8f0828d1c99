"""Decoding of the protobuf bodies kubectl's typed clients send for the workload kinds
(`kubectl create deployment|job|cronjob|poddisruptionbudget`, the Eviction of `kubectl drain`):
a schema per message, field number -> (JSON name, kind). Go writes every non-pointer field,
even when zero; as its JSON (omitempty) would, zero scalars of those are dropped, while pointer
fields (`ptr` kinds) are kept whenever present."""
from __future__ import annotations

from kubeapi import timefmt
from kubeapi.protobuf import ProtobufError, fields, unwrap

Schema = dict[int, tuple[str, object]]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: object) -> str:
    if not isinstance(value, (bytes, bytearray)):
        raise ProtobufError("expected a length-delimited field")
    return bytes(value).decode()


def _map_entry(value: bytes, value_kind: object) -> tuple[str, object]:
    entry = dict(fields(value))
    raw = entry.get(2, b"")
    if value_kind == "quantity":
        return _text(entry.get(1, b"")), _text(dict(fields(raw)).get(1, b""))
    return _text(entry.get(1, b"")), _text(raw)


def _int_or_string(value: bytes) -> int | str:
    parts = dict(fields(value))
    if parts.get(1, 0) == 1:
        return _text(parts.get(3, b""))
    return _signed(parts.get(2, 0))


def decode_message(data: bytes, schema: Schema) -> dict:
    out: dict = {}
    for number, value in fields(data):
        spec = schema.get(number)
        if spec is None:
            continue  # a field kubectl's commands do not set
        name, kind = spec
        if isinstance(kind, dict):                       # a struct: kept even when empty
            out[name] = decode_message(value, kind)
        elif isinstance(kind, list):                     # repeated struct
            out.setdefault(name, []).append(decode_message(value, kind[0]))
        elif kind == "str":
            if _text(value):
                out[name] = _text(value)
        elif kind == "strs":
            out.setdefault(name, []).append(_text(value))
        elif kind == "int":
            if value:
                out[name] = _signed(value)
        elif kind == "ptr_int":
            out[name] = _signed(value)
        elif kind == "bool":
            if value:
                out[name] = True
        elif kind == "ptr_bool":
            out[name] = bool(value)
        elif kind == "ptr_str":
            out[name] = _text(value)
        elif kind in ("map", "quantity"):
            key, val = _map_entry(value, kind)
            out.setdefault(name, {})[key] = val
        elif kind == "intstr":
            out[name] = _int_or_string(value)
        elif kind in ("time", "microtime"):
            out[name] = _time(value, kind == "microtime")
    return out


def _time(value: bytes, micro: bool) -> str | None:
    """metav1.Time / MicroTime ({seconds 1, nanos 2}); the zero time is null, as Go's JSON
    writes it."""
    parts = dict(fields(value))
    seconds, nanos = _signed(parts.get(1, 0)), parts.get(2, 0)
    if not seconds and not nanos:
        return None
    whole = timefmt.rfc3339(seconds)
    return f"{whole[:-1]}.{nanos // 1000:06d}Z" if micro else whole


OWNER_REFERENCE: Schema = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"),
                           5: ("apiVersion", "str"), 6: ("controller", "ptr_bool"),
                           7: ("blockOwnerDeletion", "ptr_bool")}
OBJECT_META: Schema = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                       5: ("uid", "str"), 6: ("resourceVersion", "str"),
                       11: ("labels", "map"), 12: ("annotations", "map"),
                       13: ("ownerReferences", [OWNER_REFERENCE]), 14: ("finalizers", "strs")}
LABEL_SELECTOR: Schema = {1: ("matchLabels", "map"),
                          2: ("matchExpressions", [{1: ("key", "str"), 2: ("operator", "str"),
                                                    3: ("values", "strs")}])}
CONTAINER: Schema = {
    1: ("name", "str"), 2: ("image", "str"), 3: ("command", "strs"), 4: ("args", "strs"),
    5: ("workingDir", "str"),
    6: ("ports", [{1: ("name", "str"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                   4: ("protocol", "str"), 5: ("hostIP", "str")}]),
    7: ("env", [{1: ("name", "str"), 2: ("value", "str")}]),
    8: ("resources", {1: ("limits", "quantity"), 2: ("requests", "quantity")}),
    13: ("terminationMessagePath", "str"), 14: ("imagePullPolicy", "str"),
    16: ("stdin", "bool"), 17: ("stdinOnce", "bool"), 18: ("tty", "bool"),
    20: ("terminationMessagePolicy", "str")}
TOLERATION: Schema = {1: ("key", "str"), 2: ("operator", "str"), 3: ("value", "str"),
                      4: ("effect", "str"), 5: ("tolerationSeconds", "ptr_int")}
POD_SPEC: Schema = {
    2: ("containers", [CONTAINER]), 3: ("restartPolicy", "str"),
    4: ("terminationGracePeriodSeconds", "ptr_int"), 5: ("activeDeadlineSeconds", "ptr_int"),
    6: ("dnsPolicy", "str"), 7: ("nodeSelector", "map"), 8: ("serviceAccountName", "str"),
    10: ("nodeName", "str"), 11: ("hostNetwork", "bool"), 16: ("hostname", "str"),
    17: ("subdomain", "str"), 19: ("schedulerName", "str"), 20: ("initContainers", [CONTAINER]),
    21: ("automountServiceAccountToken", "ptr_bool"), 22: ("tolerations", [TOLERATION]),
    24: ("priorityClassName", "str"), 30: ("enableServiceLinks", "ptr_bool")}
POD_TEMPLATE: Schema = {1: ("metadata", OBJECT_META), 2: ("spec", POD_SPEC)}
ROLLING_UPDATE: Schema = {1: ("maxUnavailable", "intstr"), 2: ("maxSurge", "intstr")}
DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "ptr_int"), 2: ("selector", LABEL_SELECTOR), 3: ("template", POD_TEMPLATE),
    4: ("strategy", {1: ("type", "str"), 2: ("rollingUpdate", ROLLING_UPDATE)}),
    5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "ptr_int"),
    7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "ptr_int")}
JOB_SPEC: Schema = {
    1: ("parallelism", "ptr_int"), 2: ("completions", "ptr_int"),
    3: ("activeDeadlineSeconds", "ptr_int"), 4: ("selector", LABEL_SELECTOR),
    5: ("manualSelector", "ptr_bool"), 6: ("template", POD_TEMPLATE),
    7: ("backoffLimit", "ptr_int"), 8: ("ttlSecondsAfterFinished", "ptr_int"),
    9: ("completionMode", "ptr_str"), 10: ("suspend", "ptr_bool")}
CRONJOB_SPEC: Schema = {
    1: ("schedule", "str"), 2: ("startingDeadlineSeconds", "ptr_int"),
    3: ("concurrencyPolicy", "str"), 4: ("suspend", "ptr_bool"),
    5: ("jobTemplate", {1: ("metadata", OBJECT_META), 2: ("spec", JOB_SPEC)}),
    6: ("successfulJobsHistoryLimit", "ptr_int"), 7: ("failedJobsHistoryLimit", "ptr_int"),
    8: ("timeZone", "ptr_str")}
PDB_SPEC: Schema = {1: ("minAvailable", "intstr"), 2: ("selector", LABEL_SELECTOR),
                    3: ("maxUnavailable", "intstr"), 4: ("unhealthyPodEvictionPolicy", "ptr_str")}
DELETE_OPTIONS: Schema = {1: ("gracePeriodSeconds", "ptr_int"),
                          2: ("preconditions", {1: ("uid", "ptr_str"),
                                                2: ("resourceVersion", "ptr_str")}),
                          3: ("orphanDependents", "ptr_bool"), 4: ("propagationPolicy", "ptr_str"),
                          5: ("dryRun", "strs")}


def _with_spec(spec: Schema) -> Schema:
    return {1: ("metadata", OBJECT_META), 2: ("spec", spec)}


KINDS: dict[tuple[str, str], Schema] = {
    ("apps/v1", "Deployment"): _with_spec(DEPLOYMENT_SPEC),
    ("batch/v1", "Job"): _with_spec(JOB_SPEC),
    ("batch/v1", "CronJob"): _with_spec(CRONJOB_SPEC),
    ("policy/v1", "PodDisruptionBudget"): _with_spec(PDB_SPEC),
    ("policy/v1", "Eviction"): {1: ("metadata", OBJECT_META), 2: ("deleteOptions",
                                                                  DELETE_OPTIONS)},
}


def decode_kind(body: bytes, kinds: dict[tuple[str, str], Schema]) -> dict | None:
    """The object as a JSON-style dict, or None when its kind has no schema in `kinds`."""
    api_version, kind, raw = unwrap(body)
    schema = kinds.get((api_version, kind))
    if schema is None:
        return None
    return {"apiVersion": api_version, "kind": kind, **decode_message(raw, schema)}


def decode(body: bytes) -> dict | None:
    """The object as a JSON-style dict, or None when its kind is not one of these."""
    return decode_kind(body, KINDS)
