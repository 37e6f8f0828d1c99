from __future__ import annotations

from overlay import gc, images
from overlay.store import Store
from runtime.cli.lean_parser import Parsed
from runtime.image_bundle import image_root
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    store = Store(image_root(p.globals))
    names = [p.args["image"], *p.args["more"]]
    for name in names:
        images.load(store, name)  # all known before any goes
    for name in names:
        print(images.remove(store, name).name)
    gc.collect(store)
    return 0
