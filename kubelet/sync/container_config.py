"""A pod's container as the runtime service gets it (the kubelet's generateContainerConfig):
command and args with $(VAR) references expanded against the container's environment
(env_vars.py), env, the volume mounts (volume_mounts.py), workingDir, labels and annotations,
the log path <name>/<restartCount>.log, stdin and tty, and for an ephemeral container the
container whose PID namespace it joins. The image's Entrypoint and Cmd are the runtime's
side (container_spec.py), as in the CRI."""
from __future__ import annotations

from cri.api import ContainerConfig, ContainerMetadata, LinuxContainerConfig
from kubelet import downward, labels
from kubelet.cm import qos
from kubelet.config_objects import ConfigObjects
from kubelet.pods import Pod
from kubelet.sync import volume_mounts
from kubelet.sync.env_vars import ConfigError, environment, expand

__all__ = ["ConfigError", "PodContext", "build", "expand"]


class PodContext:
    """What a container's config needs beside the pod: ConfigMaps and Secrets, the downward
    API's addresses and node capacity, and where the pod's volumes are on the host."""
    __slots__ = ("objects", "info", "volume_paths")

    def __init__(self, objects: ConfigObjects, info: downward.PodInfo,
                 volume_paths: dict[str, str]) -> None:
        self.objects = objects
        self.info = info
        self.volume_paths = volume_paths


def build(pod: Pod, container: dict, restart_count: int, init: bool,
          ctx: PodContext | None = None, pid_target: str = "") -> ContainerConfig:
    """pid_target: the ID of the container whose PID namespace an ephemeral container shares
    (its targetContainerName's)."""
    if ctx is None:
        ctx = PodContext(ConfigObjects(None), downward.PodInfo([], [], 1, 0), {})
    envs = environment(pod, container, ctx.objects, ctx.info)
    env_map = dict(envs)
    try:
        resources = qos.container_resources(container)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return ContainerConfig(
        metadata=ContainerMetadata(container["name"], restart_count),
        image=container.get("image", ""),
        command=[expand(a, env_map) for a in container.get("command") or []],
        args=[expand(a, env_map) for a in container.get("args") or []],
        working_dir=container.get("workingDir", ""),
        envs=envs,
        mounts=volume_mounts.mounts(pod, container, ctx.volume_paths, env_map),
        labels=labels.container_labels(pod, container),
        annotations=labels.container_annotations(pod, container, restart_count, init),
        log_path=f"{container['name']}/{restart_count}.log",
        linux=LinuxContainerConfig(resources=resources, pid_target=pid_target),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
    )
