from __future__ import annotations

from overlay import pull
from overlay.progress import Progress
from overlay.store import Store
from runtime.cli.lean_parser import Parsed
from runtime.image_bundle import image_root
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    image = pull.pull(Store(image_root(p.globals)), p.args["ref"], insecure=p.options["insecure"],
                      auth_file=p.options["authfile"], progress=Progress())
    print(f"{image.name} {image.digest}")
    return 0
