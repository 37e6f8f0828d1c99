"""The invoker's per-attachment result cache, in libcni's layout and format so that tools that
read libcni's cache understand ours: <cacheDir>/results/<network>-<containerID>-<ifname>."""
from __future__ import annotations

import base64
import json
import os

DEFAULT_CACHE_DIR = "/var/lib/cni"
KIND = "cniCacheV1"


def path_of(cache_dir: str, network: str, container_id: str, ifname: str) -> str:
    return os.path.join(cache_dir, "results", f"{network}-{container_id}-{ifname}")


def write(cache_dir: str, network: str, raw_config: bytes, rt, result: dict) -> None:
    path = path_of(cache_dir, network, rt.container_id, rt.ifname)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    entry = {"kind": KIND, "containerId": rt.container_id,
             "config": base64.b64encode(raw_config).decode(), "ifName": rt.ifname,
             "networkName": network, "netns": rt.netns, "result": result}
    if rt.args:
        entry["cniArgs"] = [list(kv) for kv in rt.args]
    if rt.capability_args:
        entry["capabilityArgs"] = rt.capability_args
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, path)


def read(cache_dir: str, network: str, container_id: str, ifname: str) -> dict | None:
    """The cache entry, None if missing or unreadable."""
    try:
        with open(path_of(cache_dir, network, container_id, ifname)) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("kind") == KIND else None


def remove(cache_dir: str, network: str, container_id: str, ifname: str) -> None:
    try:
        os.unlink(path_of(cache_dir, network, container_id, ifname))
    except FileNotFoundError:
        pass


def entries(cache_dir: str) -> list[dict]:
    """Every readable entry, with its file path under "path"."""
    results = os.path.join(cache_dir, "results")
    out = []
    try:
        names = os.listdir(results)
    except FileNotFoundError:
        return out
    for name in names:
        try:
            with open(os.path.join(results, name)) as f:
                entry = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and entry.get("kind") == KIND:
            entry["path"] = os.path.join(results, name)
            out.append(entry)
    return out
