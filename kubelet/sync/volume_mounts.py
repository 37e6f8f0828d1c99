"""A container's volumeMounts as the bind mounts of its OCI config (the kubelet's makeMounts):
the volume's host path, or a subPath below it that must stay inside the volume (no absolute
path, no '..', no symlink leading out; a missing subPath is made as a directory), readOnly, and
mountPropagation. configMap, secret, downwardAPI and projected volumes are always read-only, as
the kubelet has mounted them since CVE-2017-1002102."""
from __future__ import annotations

import os

from cri.api import Mount
from kubelet.pods import Pod
from kubelet.sync.env_vars import ConfigError, expand

READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")
PROPAGATION = {None: "private", "": "private", "None": "private",
               "HostToContainer": "rslave", "Bidirectional": "rshared"}


def mounts(pod: Pod, container: dict, paths: dict[str, str], env: dict[str, str]
           ) -> list[Mount]:
    volumes = {v.get("name"): v for v in pod.volumes}
    result = []
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        if name not in paths:
            raise ConfigError(f'cannot find volume "{name}" to mount into container '
                              f'"{container["name"]}"')
        host_path = paths[name]
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub = expand(vm["subPathExpr"], env)
        if sub:
            host_path = _sub_path(host_path, sub, name, container["name"])
        propagation = vm.get("mountPropagation")
        if propagation not in PROPAGATION:
            raise ConfigError(f"invalid mountPropagation {propagation!r} of volumeMount "
                              f'"{name}"')
        volume = volumes.get(name) or {}
        readonly = bool(vm.get("readOnly")) or any(k in volume for k in READ_ONLY_KINDS)
        result.append(Mount(vm.get("mountPath", ""), host_path, readonly,
                            PROPAGATION[propagation]))
    return result


def _sub_path(volume_path: str, sub: str, name: str, container: str) -> str:
    """The resolved host path of sub inside the volume; made as a directory if missing."""
    what = f'failed to prepare subPath for volumeMount "{name}" of container "{container}"'
    if os.path.isabs(sub):
        raise ConfigError(f"{what}: subPath {sub} must be a relative path")
    if ".." in sub.split("/"):
        raise ConfigError(f"{what}: subPath {sub} must not contain '..'")
    base = os.path.realpath(volume_path)
    resolved = os.path.realpath(os.path.join(base, sub))
    if resolved != base and not resolved.startswith(base + "/"):
        raise ConfigError(f"{what}: subPath {sub} resolves to {resolved}, which is not within "
                          f"the volume {base}")
    if not os.path.lexists(resolved):
        os.makedirs(resolved, mode=os.stat(base).st_mode & 0o7777, exist_ok=True)
    return resolved
