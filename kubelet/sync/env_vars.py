"""A container's environment as the kubelet makes it (makeEnvironmentVariables): envFrom first
(ConfigMaps and Secrets, each key with the prefix; keys that are no valid variable name are
skipped), then env, where a value is $(VAR)-expanded against the variables before it and
valueFrom reads the downward API, a ConfigMap key or a Secret key; last the Services' variables
(service_env.py) that env did not set, which $(VAR) may also name. What is missing and not
optional stops the container with CreateContainerConfigError and the kubelet's message."""
from __future__ import annotations

import logging
import re

from kubelet import downward
from kubelet.config_objects import ConfigObjects, ObjectMissing, ObjectUnavailable
from kubelet.pods import Pod
from kubelet.sync import service_env

log = logging.getLogger("kubelet.env")

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(ValueError):
    """The pod asks for something that cannot be made (CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: a defined VAR is replaced, $$ is a literal $, anything
    else (an undefined VAR, a lone $) stays as written."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def environment(pod: Pod, container: dict, objects: ConfigObjects,
                info: downward.PodInfo) -> list[tuple[str, str]]:
    env: dict[str, str] = {}
    namespace = pod.namespace
    services = _service_env(pod, objects)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, kind, read = source["configMapRef"], "configMap", objects.config_map
        elif "secretRef" in source:
            ref, kind, read = source["secretRef"], "secret", objects.secret
        else:
            continue
        data = _read(read, namespace, ref.get("name", ""), bool(ref.get("optional")))
        if data is None:
            continue
        invalid = []
        for key, value in data.items():
            name = prefix + key
            if not _ENV_NAME.match(name):
                invalid.append(name)
                continue
            env[name] = value.decode(errors="replace")
        if invalid:
            # event: InvalidEnvironmentVariableNames (Warning)
            log.warning("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are "
                        "considered invalid environment variable names.",
                        ", ".join(sorted(invalid)), kind, namespace, ref.get("name", ""))
    for var in container.get("env") or []:
        name = var.get("name", "")
        value = var.get("value") or ""
        if value:
            env[name] = expand(str(value), {**services, **env})
            continue
        source = var.get("valueFrom")
        if not source:
            env[name] = ""
            continue
        resolved = _value_from(pod, container, source, objects, info)
        if resolved is not None:
            env[name] = resolved
    return list(env.items()) + [(k, v) for k, v in services.items() if k not in env]


def _service_env(pod: Pod, objects: ConfigObjects) -> dict[str, str]:
    try:
        found = objects.services(wait_for_sync=not pod.is_static)
    except ObjectUnavailable as e:
        raise ConfigError(str(e)) from None
    # The API server defaults enableServiceLinks to true; a static pod's file may lack it.
    return service_env.for_pod(found, pod.namespace, pod.enable_service_links)


def _value_from(pod: Pod, container: dict, source: dict, objects: ConfigObjects,
                info: downward.PodInfo) -> str | None:
    """The value, or None for an optional key that is not there."""
    namespace = pod.namespace
    try:
        if "fieldRef" in source:
            return downward.field_value(pod, source["fieldRef"].get("fieldPath", ""), info)
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            return downward.resource_value(pod, ref.get("containerName") or container["name"],
                                           ref.get("resource", ""), ref.get("divisor"), info)
    except downward.FieldError as e:
        raise ConfigError(str(e)) from None
    for field, kind, read in (("configMapKeyRef", "ConfigMap", objects.config_map),
                              ("secretKeyRef", "Secret", objects.secret)):
        if field in source:
            ref = source[field]
            optional = bool(ref.get("optional"))
            data = _read(read, namespace, ref.get("name", ""), optional)
            if data is None:
                return None
            key = ref.get("key", "")
            if key not in data:
                if optional:
                    return None
                raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/"
                                  f"{ref.get('name', '')}")
            return data[key].decode(errors="replace")
    return ""


def _read(read, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
    try:
        return read(namespace, name)
    except ObjectMissing as e:
        if optional:
            return None
        raise ConfigError(str(e)) from None
    except ObjectUnavailable as e:
        raise ConfigError(str(e)) from None
