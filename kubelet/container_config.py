"""A pod's container as the runtime service gets it (the kubelet's generateContainerConfig):
command and args with $(VAR) references expanded against the container's environment, env,
workingDir, labels and annotations, and the log path <name>/<restartCount>.log. The image's
Entrypoint and Cmd are the runtime's side (container_spec.py), as in the CRI."""
from __future__ import annotations

from kubelet import container_resources, labels
from kubelet.runtime_service import ContainerConfig, ContainerMetadata, LinuxContainerConfig


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


def environment(container: dict) -> list[tuple[str, str]]:
    """The container's env, each value expanded against the ones before it. valueFrom and
    envFrom are issue 9's; until then such a variable is refused rather than silently empty."""
    result: list[tuple[str, str]] = []
    known: dict[str, str] = {}
    for i, var in enumerate(container.get("env") or []):
        name = var.get("name", "")
        if "valueFrom" in var:
            raise ConfigError(f"env[{i}] {name}: valueFrom is not supported yet")
        value = expand(str(var.get("value", "")), known)
        known[name] = value
        result.append((name, value))
    if container.get("envFrom"):
        raise ConfigError("envFrom is not supported yet")
    return result


def build(pod: dict, container: dict, restart_count: int, init: bool) -> ContainerConfig:
    envs = environment(container)
    env_map = dict(envs)
    try:
        resources = container_resources.linux_resources(container)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return ContainerConfig(
        metadata=ContainerMetadata(container["name"], restart_count),
        image=container.get("image", ""),
        command=[expand(a, env_map) for a in container.get("command") or []],
        args=[expand(a, env_map) for a in container.get("args") or []],
        working_dir=container.get("workingDir", ""),
        envs=envs,
        labels=labels.container_labels(pod, container),
        annotations=labels.container_annotations(pod, container, restart_count, init),
        log_path=f"{container['name']}/{restart_count}.log",
        linux=LinuxContainerConfig(resources=resources),
    )
