"""Pod validation: the checks of kube's ValidatePodCreate/ValidatePodUpdate for the fields a
kubelet uses (containers, images, ports, env, mounts, volumes, resources, probes, policies)."""
from __future__ import annotations

import json

from kubeapi import validation
from kubeapi.quantity import parse_quantity
from kubeapi.status import (duplicate, field_error, forbidden_field, invalid_value,
                            not_supported, required)

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
TOLERATION_OPERATORS = ["Equal", "Exists"]
TOLERATION_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
PHASES = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
VOLUME_SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "projected", "downwardAPI",
                  "persistentVolumeClaim", "nfs", "csi", "ephemeral", "image", "iscsi", "local")
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
PROC_MOUNT_TYPES = ["Default", "Unmasked"]
SECCOMP_PROFILE_TYPES = ["Localhost", "RuntimeDefault", "Unconfined"]
# The fields of an ephemeral container that would make the pod rely on it (kube's
# allowedEphemeralContainerFields, false ones, in the order of the type's fields).
EPHEMERAL_FORBIDDEN = ("ports", "resources", "resizePolicy", "restartPolicy",
                       "restartPolicyRules", "livenessProbe", "readinessProbe", "startupProbe",
                       "lifecycle")
EPHEMERAL_FORBIDDEN_DETAIL = "cannot be set for an Ephemeral Container"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _int_in(value: object, low: int, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and \
        (high is None or value <= high)


def _resources(res: object, path: str) -> list[dict]:
    if res is None:
        return []
    if not isinstance(res, dict):
        return [invalid_value(path, res, "must be an object")]
    errors, parsed = [], {}
    for part in ("limits", "requests"):
        for name, value in (res.get(part) or {}).items():
            try:
                q = parse_quantity(value)
            except ValueError as e:
                errors.append(invalid_value(f"{path}.{part}[{name}]", value, str(e)))
                continue
            if q < 0:
                errors.append(invalid_value(f"{path}.{part}[{name}]", value,
                                            "must be greater than or equal to 0"))
            parsed[(part, name)] = q
    for (part, name), q in parsed.items():
        limit = parsed.get(("limits", name))
        if part == "requests" and limit is not None and q > limit:
            errors.append(invalid_value(f"{path}.requests", res["requests"][name],
                                        f"must be less than or equal to {name} limit of "
                                        f"{res['limits'][name]}"))
    return errors


def _probe(probe: object, path: str) -> list[dict]:
    if probe is None:
        return []
    if not isinstance(probe, dict):
        return [invalid_value(path, probe, "must be an object")]
    handlers = [h for h in PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        return [required(path) | {"message": "Required value: must specify a handler type"}]
    if len(handlers) > 1:
        return [forbidden_field(f"{path}.{handlers[1]}", "may not specify more than 1 handler "
                                "type")]
    errors = []
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                  "failureThreshold"):
        if field in probe and not _int_in(probe[field], 0):
            errors.append(invalid_value(f"{path}.{field}", probe[field],
                                        "must be greater than or equal to 0"))
    for h in ("httpGet", "tcpSocket", "grpc"):
        port = (probe.get(h) or {}).get("port") if isinstance(probe.get(h), dict) else None
        if h in handlers and port is None:
            errors.append(required(f"{path}.{h}.port"))
        elif isinstance(port, int) and not _int_in(port, 1, 65535):
            errors.append(invalid_value(f"{path}.{h}.port", port,
                                        "must be between 1 and 65535, inclusive"))
    return errors


def _seccomp_profile(profile: object, path: str) -> list[dict]:
    if profile is None:
        return []
    if not isinstance(profile, dict):
        return [invalid_value(path, profile, "must be an object")]
    kind, local = profile.get("type"), profile.get("localhostProfile")
    if not kind:
        errors = [required(f"{path}.type", "type is required when seccompProfile is set")]
    elif kind not in SECCOMP_PROFILE_TYPES:
        errors = [not_supported(f"{path}.type", kind, SECCOMP_PROFILE_TYPES)]
    else:
        errors = []
    if kind != "Localhost":
        if local is not None:
            errors.append(invalid_value(f"{path}.localhostProfile", local,
                                        "can only be set when seccomp type is Localhost"))
    elif local is None:
        errors.append(required(f"{path}.localhostProfile",
                               "must be set when seccomp type is Localhost"))
    elif not isinstance(local, str) or local.startswith("/"):
        errors.append(invalid_value(f"{path}.localhostProfile", local, "must be a relative path"))
    elif ".." in local.split("/"):
        errors.append(invalid_value(f"{path}.localhostProfile", local, "must not contain '..'"))
    return errors


def _security_context(sc: object, path: str, host_users: bool) -> list[dict]:
    if sc is None:
        return []
    if not isinstance(sc, dict):
        return [invalid_value(path, sc, "must be an object")]
    errors = _seccomp_profile(sc.get("seccompProfile"), f"{path}.seccompProfile")
    proc_mount = sc.get("procMount")
    if proc_mount is None:
        return errors
    if proc_mount not in PROC_MOUNT_TYPES:
        errors.append(not_supported(f"{path}.procMount", proc_mount, PROC_MOUNT_TYPES))
    elif proc_mount == "Unmasked" and host_users:
        errors.append(invalid_value(f"{path}.procMount", proc_mount,
                                    "`hostUsers` must be false to use `Unmasked`"))
    return errors


def _container(c: object, path: str, volumes: set[str], creating: bool,
               host_users: bool) -> list[dict]:
    if not isinstance(c, dict):
        return [invalid_value(path, c, "must be an object")]
    errors = []
    if not c.get("name"):
        errors.append(required(f"{path}.name"))
    else:
        errors += validation.dns1123_label(c["name"], f"{path}.name")
    if not isinstance(c.get("image"), str) or not c.get("image", "").strip():
        errors.append(required(f"{path}.image"))
    for field in ("command", "args"):
        if c.get(field) is not None and (not isinstance(c[field], list) or
                                         not all(isinstance(a, str) for a in c[field])):
            errors.append(invalid_value(f"{path}.{field}", c[field], "must be a list of strings"))
    if c.get("imagePullPolicy") not in PULL_POLICIES:
        errors.append(not_supported(f"{path}.imagePullPolicy", c.get("imagePullPolicy", ""),
                                    PULL_POLICIES))
    if c.get("terminationMessagePolicy") not in TERMINATION_MESSAGE_POLICIES:
        errors.append(not_supported(f"{path}.terminationMessagePolicy",
                                    c.get("terminationMessagePolicy", ""),
                                    TERMINATION_MESSAGE_POLICIES))
    port_names: set[str] = set()
    for i, port in enumerate(c.get("ports") or []):
        p = f"{path}.ports[{i}]"
        if not isinstance(port, dict):
            errors.append(invalid_value(p, port, "must be an object"))
            continue
        if "containerPort" not in port:
            errors.append(required(f"{p}.containerPort"))
        elif not _int_in(port["containerPort"], 1, 65535):
            errors.append(invalid_value(f"{p}.containerPort", port["containerPort"],
                                        "must be between 1 and 65535, inclusive"))
        if "hostPort" in port and not _int_in(port["hostPort"], 0, 65535):
            errors.append(invalid_value(f"{p}.hostPort", port["hostPort"],
                                        "must be between 1 and 65535, inclusive"))
        if port.get("protocol") not in PROTOCOLS:
            errors.append(not_supported(f"{p}.protocol", port.get("protocol", ""), PROTOCOLS))
        if "name" in port:
            if not validation.iana_svc_name(port["name"]):
                errors.append(invalid_value(f"{p}.name", port["name"],
                                            "must be no more than 15 characters, contain only "
                                            "lowercase alphanumerics and '-', and contain at "
                                            "least one letter"))
            elif port["name"] in port_names:
                errors.append(duplicate(f"{p}.name", port["name"]))
            port_names.add(port.get("name"))
    for i, env in enumerate(c.get("env") or []):
        p = f"{path}.env[{i}]"
        if not isinstance(env, dict) or not env.get("name"):
            errors.append(required(f"{p}.name"))
            continue
        if "=" in env["name"] or not env["name"].isprintable():
            errors.append(invalid_value(f"{p}.name", env["name"], "a valid environment variable "
                                        "name must consist only of printable ASCII characters "
                                        "other than '='"))
        if "value" in env and env.get("valueFrom"):
            errors.append(invalid_value(f"{p}.valueFrom", "", "may not be specified when "
                                        "`value` is not empty"))
    mount_paths: set[str] = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        p = f"{path}.volumeMounts[{i}]"
        if not isinstance(m, dict):
            errors.append(invalid_value(p, m, "must be an object"))
            continue
        if not m.get("name"):
            errors.append(required(f"{p}.name"))
        elif m["name"] not in volumes:
            errors.append(field_error("FieldValueNotFound", f"{p}.name",
                                      f'Not found: "{m["name"]}"'))
        if not m.get("mountPath"):
            errors.append(required(f"{p}.mountPath"))
        elif m["mountPath"] in mount_paths:
            errors.append(invalid_value(f"{p}.mountPath", m["mountPath"], "must be unique"))
        mount_paths.add(m.get("mountPath"))
    errors += _resources(c.get("resources"), f"{path}.resources")
    errors += _security_context(c.get("securityContext"), f"{path}.securityContext", host_users)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        errors += _probe(c.get(probe), f"{path}.{probe}")
    return errors


def _volumes(spec: dict) -> tuple[list[dict], set[str]]:
    errors, names = [], set()
    for i, v in enumerate(spec.get("volumes") or []):
        p = f"spec.volumes[{i}]"
        if not isinstance(v, dict):
            errors.append(invalid_value(p, v, "must be an object"))
            continue
        name = v.get("name")
        if not name:
            errors.append(required(f"{p}.name"))
        else:
            errors += validation.dns1123_label(name, f"{p}.name")
            if name in names:
                errors.append(duplicate(f"{p}.name", name))
            names.add(name)
        sources = [k for k in v if k != "name" and v[k] is not None]
        if len(sources) > 1:
            errors.append(forbidden_field(f"{p}.{sources[1]}", "may not specify more than 1 "
                                          "volume type"))
        if "hostPath" in sources and not (v["hostPath"] or {}).get("path"):
            errors.append(required(f"{p}.hostPath.path"))
        if "configMap" in sources and not (v["configMap"] or {}).get("name"):
            errors.append(required(f"{p}.configMap.name"))
        if "secret" in sources and not (v["secret"] or {}).get("secretName"):
            errors.append(required(f"{p}.secret.secretName"))
    return errors, names


def validate_pod_spec(spec: object, creating: bool = True) -> list[dict]:
    if not isinstance(spec, dict):
        return [required("spec")]
    errors, volumes = _volumes(spec)
    pod_sc = spec.get("securityContext")
    if isinstance(pod_sc, dict):
        errors += _seccomp_profile(pod_sc.get("seccompProfile"),
                                   "spec.securityContext.seccompProfile")
    containers = spec.get("containers")
    if not containers:
        errors.append(required("spec.containers"))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            errors += _container(c, f"spec.{field}[{i}]", volumes, creating,
                                 spec.get("hostUsers") is not False)
            name = c.get("name") if isinstance(c, dict) else None
            if name and name in names:
                errors.append(duplicate(f"spec.{field}[{i}].name", name))
            names.add(name)
    errors += _ephemeral_containers(spec, volumes, names, creating)
    if spec.get("restartPolicy") not in RESTART_POLICIES:
        errors.append(not_supported("spec.restartPolicy", spec.get("restartPolicy", ""),
                                    RESTART_POLICIES))
    if spec.get("dnsPolicy") not in DNS_POLICIES:
        errors.append(not_supported("spec.dnsPolicy", spec.get("dnsPolicy", ""), DNS_POLICIES))
    tgps = spec.get("terminationGracePeriodSeconds")
    if tgps is not None and not _int_in(tgps, 0):
        errors.append(invalid_value("spec.terminationGracePeriodSeconds", tgps,
                                    "must be greater than or equal to 0"))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and not _int_in(ads, 1):
        errors.append(invalid_value("spec.activeDeadlineSeconds", ads,
                                    "must be between 1 and 2147483647, inclusive"))
    errors += validation.labels(spec.get("nodeSelector"), "spec.nodeSelector")
    if spec.get("nodeName"):
        errors += validation.dns1123_subdomain(spec["nodeName"], "spec.nodeName")
    for i, t in enumerate(spec.get("tolerations") or []):
        p = f"spec.tolerations[{i}]"
        if not isinstance(t, dict):
            errors.append(invalid_value(p, t, "must be an object"))
            continue
        op = t.get("operator", "Equal")
        if op not in TOLERATION_OPERATORS:
            errors.append(not_supported(f"{p}.operator", op, TOLERATION_OPERATORS))
        if op == "Exists" and t.get("value"):
            errors.append(invalid_value(f"{p}.operator", t["value"], "value must be empty when "
                                        "`operator` is 'Exists'"))
        if not t.get("key") and op != "Exists":
            errors.append(invalid_value(f"{p}.operator", op, "operator must be Exists when "
                                        "`key` is empty, which means \"match all values and "
                                        "all keys\""))
        if t.get("effect") and t["effect"] not in TOLERATION_EFFECTS:
            errors.append(not_supported(f"{p}.effect", t["effect"], TOLERATION_EFFECTS))
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            errors.append(invalid_value(f"{p}.effect", t.get("effect", ""), "effect must be "
                                        "'NoExecute' when `tolerationSeconds` is set"))
    if spec.get("hostNetwork"):
        for i, c in enumerate(spec.get("containers") or []):
            for j, port in enumerate((c.get("ports") or []) if isinstance(c, dict) else []):
                if isinstance(port, dict) and port.get("hostPort") not in (
                        None, port.get("containerPort")):
                    errors.append(invalid_value(
                        f"spec.containers[{i}].ports[{j}].hostPort", port["hostPort"],
                        "must match `containerPort` when `hostNetwork` is true"))
    return errors


def _ephemeral_containers(spec: dict, volumes: set[str], others: set[str],
                          creating: bool) -> list[dict]:
    """validateEphemeralContainers: names unique across every kind of container, a target
    that is an init or app container, none of the fields that serve the pod."""
    ephemeral = spec.get("ephemeralContainers")
    if not ephemeral:
        return []
    if creating:
        return [forbidden_field("spec.ephemeralContainers", "cannot be set on create")]
    if not isinstance(ephemeral, list):
        return [invalid_value("spec.ephemeralContainers", ephemeral, "must be a list")]
    errors, names = [], set(others)
    for i, c in enumerate(ephemeral):
        path = f"spec.ephemeralContainers[{i}]"
        errors += _container(c, path, volumes, False, spec.get("hostUsers") is not False)
        if not isinstance(c, dict):
            continue
        name = c.get("name")
        if name in names:
            errors.append(duplicate(f"{path}.name", name))
        names.add(name)
        target = c.get("targetContainerName")
        if target and target not in others:
            errors.append(field_error("FieldValueNotFound", f"{path}.targetContainerName",
                                      f'Not found: "{target}"'))
        for field in EPHEMERAL_FORBIDDEN:
            if c.get(field):
                errors.append(forbidden_field(f"{path}.{field}", EPHEMERAL_FORBIDDEN_DETAIL))
        for j, m in enumerate(c.get("volumeMounts") or []):
            for field in ("subPath", "subPathExpr"):
                if isinstance(m, dict) and m.get(field):
                    errors.append(forbidden_field(f"{path}.volumeMounts[{j}].{field}",
                                                  EPHEMERAL_FORBIDDEN_DETAIL))
    return errors


def validate_ephemeral_containers_update(new: dict, old: dict) -> list[dict]:
    """ValidatePodEphemeralContainersUpdate: the pod's spec as a whole, then only additions:
    an existing ephemeral container may be neither removed nor changed. Static pods have
    none (their mirror pod is not what the kubelet runs)."""
    errors = validate_pod_spec(new.get("spec"), creating=False)
    if MIRROR_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
        return [forbidden_field("", "static pods do not support ephemeral containers")]
    added = {c.get("name"): c for c in _ephemeral_list(new) if isinstance(c, dict)}
    for previous in _ephemeral_list(old):
        name = previous.get("name")
        if name not in added:
            errors.append(forbidden_field("spec.ephemeralContainers", f"existing ephemeral "
                                          f'containers "{name}" may not be removed\n'))
        elif added[name] != previous:
            errors.append(forbidden_field("spec.ephemeralContainers", f"existing ephemeral "
                                          f'containers "{name}" may not be changed\n'
                                          f"{_diff(previous, added[name])}"))
    return errors


def _ephemeral_list(pod: dict) -> list:
    found = (pod.get("spec") or {}).get("ephemeralContainers")
    return found if isinstance(found, list) else []


def _diff(old: dict, new: dict) -> str:
    """The changed fields, one "- old" and one "+ new" line each, as a hint like kube's."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"  - {key}: {json.dumps(old.get(key))}")
            lines.append(f"  + {key}: {json.dumps(new.get(key))}")
    return "\n".join(lines)


def validate_pod_status(status: object) -> list[dict]:
    if not isinstance(status, dict):
        return []
    phase = status.get("phase")
    if phase is not None and phase not in PHASES:
        return [not_supported("status.phase", phase, PHASES)]
    return []


# The spec fields a pod update may change (ValidatePodUpdate): everything else is immutable.
def validate_pod_update(new: dict, old: dict) -> list[dict]:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    errors = validate_pod_spec(new_spec, creating=False)
    if errors:
        return errors
    comparable_new = _mutable_fields_cleared(new_spec)
    comparable_old = _mutable_fields_cleared(old_spec)
    if comparable_new != comparable_old:
        errors.append(field_error(
            "FieldValueForbidden", "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative)"))
    old_tol = old_spec.get("tolerations") or []
    new_tol = new_spec.get("tolerations") or []
    if any(t not in new_tol for t in old_tol):
        errors.append(forbidden_field("spec.tolerations", "existing toleration can not be "
                                      "modified except its tolerationSeconds"))
    return errors


def _mutable_fields_cleared(spec: dict) -> dict:
    out = dict(spec)
    for field in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        out.pop(field, None)
    for field in ("containers", "initContainers"):
        out[field] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                      for c in spec.get(field) or []]
    return out
