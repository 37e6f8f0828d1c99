from __future__ import annotations

from runtime import image_annotations
from runtime.cli.lean_parser import Parsed
from runtime.container import CREATED, STOPPED, Container
from runtime.errors import ContainerNotFound, StateError
from runtime.log import Log
from runtime.state import StateDir


def run(p: Parsed, log: Log) -> int:
    root, container_id, force = p.globals["root"], p.args["container_id"], p.options["force"]
    try:
        c = Container.load(root, container_id)
    except ContainerNotFound:
        if force:
            # A runtime killed before it wrote any state may leave a bare directory.
            StateDir(root, container_id).remove()
            return 0
        raise
    status = c.status()
    if status not in (STOPPED, CREATED) and not force:
        raise StateError(f"cannot delete container {container_id} that is not stopped: {status}")
    c.destroy(log)
    image_root = (c.state.annotations or {}).get(image_annotations.IMAGE_ROOT)
    if image_root:
        # A container of `run --image`: its snapshot (rootfs and bundle) goes with it.
        from runtime import image_bundle

        image_bundle.remove(image_root, container_id)
    return 0
