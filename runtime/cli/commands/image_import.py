from __future__ import annotations

import os

from overlay import importer
from overlay.errors import ImageError
from overlay.progress import Progress
from overlay.store import Store
from runtime.cli.lean_parser import Parsed
from runtime.image_bundle import image_root
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    source = p.args["file"]
    if not os.path.exists(source):
        raise ImageError(f"{source}: no such file or directory")
    for image in importer.import_archive(Store(image_root(p.globals)), source,
                                         p.options["name"], Progress().status):
        print(f"{image.name} {image.digest}")
    return 0
