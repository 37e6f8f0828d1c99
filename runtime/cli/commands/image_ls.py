from __future__ import annotations

import json

from overlay import images
from overlay.digest import short
from overlay.store import Store
from runtime.cli.lean_parser import Parsed
from runtime.image_bundle import image_root
from runtime.log import Log

_COLUMNS = ("NAME", "DIGEST", "SIZE", "CREATED")


def run(p: Parsed, log: Log) -> int:
    found = images.list_all(Store(image_root(p.globals)))
    if p.options["quiet"]:
        for image in found:
            print(image.name)
    elif p.options["format"] == "json":
        print(json.dumps([dict(image.to_json(), size=image.size) for image in found]))
    else:
        rows = [list(_COLUMNS)] + [[i.name, short(i.digest), _size(i.size), i.created]
                                   for i in found]
        widths = [max(len(r[c]) for r in rows) + 3 for c in range(len(_COLUMNS) - 1)]
        for r in rows:
            print("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1])
    return 0


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}GB"
