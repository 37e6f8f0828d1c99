"""Bundles from images, for `pycontainer run --image`: an overlayfs snapshot of the image as the
rootfs, and a config.json made of the default spec, the image config (overlay.image_config, per
image-spec conversion.md) and the user's overrides. The snapshot directory is the bundle:
<image root>/snapshots/<container id>/{config.json,rootfs}.

Its annotations name the image root, so that `delete` removes the snapshot with the container.
"""
from __future__ import annotations

import json
import os

from overlay import image_config, images, layers, snapshots
from overlay.store import Store, default_root
from runtime import image_annotations
from runtime.init import securejoin
from runtime.default_spec import default_spec
from runtime.errors import PycontainerError
from runtime.state import check_id

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_CPU_PERIOD = 100_000
_MAX_ETC_FILE = 4 << 20


class Overrides:
    __slots__ = ("env", "memory", "cpus", "network", "tty")

    def __init__(self, env: list[str], memory: str | None, cpus: str | None, network: str,
                 tty: bool) -> None:
        self.env = env
        self.memory = parse_memory(memory) if memory is not None else None
        self.cpus = parse_cpus(cpus) if cpus is not None else None
        self.network = network
        self.tty = tty


def image_root(globals_: dict) -> str:
    return globals_.get("image_root") or default_root()


def new_id() -> str:
    return os.urandom(6).hex()


def parse_memory(text: str) -> int:
    number, unit = text.rstrip("bBkKmMgG"), text[len(text.rstrip("bBkKmMgG")):].lower()
    if not number.isdigit() or unit not in _UNITS or int(number) == 0:
        raise PycontainerError(f"--memory {text}: must be a positive size like 64m, 512k, 1g")
    return int(number) * _UNITS[unit]


def parse_cpus(text: str) -> float:
    try:
        cpus = float(text)
    except ValueError:
        cpus = 0.0
    if not 0.01 <= cpus <= 1024:
        raise PycontainerError(f"--cpus {text}: must be a number of CPUs like 0.5 or 2")
    return cpus


def create(root: str, container_id: str, ref: str, command: list[str],
           overrides: Overrides) -> str:
    """Mounts the snapshot and writes config.json; returns the bundle directory. On failure
    nothing is left behind."""
    check_id(container_id)
    store = Store(root)
    image = images.load(store, ref)
    config = store.read_json_blob(image.config, "image config")
    with store.adding():
        chain = layers.ensure_unpacked(store, image)
    rootfs = snapshots.create(store, container_id, chain)
    bundle = os.path.dirname(rootfs)
    try:
        process = image_config.process(config, command, overrides.env,
                                       read_in_root(rootfs, "/etc/passwd"),
                                       read_in_root(rootfs, "/etc/group"))
        spec = _spec(process, image_config.annotations(config), overrides, container_id)
        spec["annotations"].update({image_annotations.IMAGE_ROOT: store.root,
                                    image_annotations.IMAGE_NAME: image.name})
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f, indent=1)
    except BaseException:
        snapshots.remove(store, container_id)
        raise
    return bundle


def read_in_root(rootfs: str, path: str) -> str | None:
    """A text file of the image as the container sees it (its symlinks resolved inside the
    rootfs), or None if it has no such regular file."""
    import stat

    try:
        fd = os.open(securejoin.join(rootfs, path),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(_MAX_ETC_FILE).decode("utf-8", "replace")


def _spec(process: image_config.Process, annotations: dict, o: Overrides,
          container_id: str) -> dict:
    import cgroups

    spec = default_spec(cgroups.detect_mode() == "v2")
    p = spec["process"]
    p.update(terminal=o.tty, args=process.args, env=process.env, cwd=process.cwd)
    p["user"] = {"uid": process.uid, "gid": process.gid}
    if process.additional_gids:
        p["user"]["additionalGids"] = process.additional_gids
    if o.tty and not any(e.startswith("TERM=") for e in process.env):
        p["env"].append("TERM=xterm")
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = container_id[:12]
    spec["annotations"] = annotations
    linux = spec["linux"]
    if o.network == "host":
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    resources = linux["resources"]
    if o.memory is not None:
        resources["memory"] = {"limit": o.memory}
    if o.cpus is not None:
        resources["cpu"] = {"quota": int(o.cpus * _CPU_PERIOD), "period": _CPU_PERIOD}
    return spec


def remove(root: str, container_id: str) -> None:
    snapshots.remove(Store(root), container_id)
