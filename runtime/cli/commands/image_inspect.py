from __future__ import annotations

import json

from overlay import images, layers
from overlay.store import Store
from runtime.cli.lean_parser import Parsed
from runtime.image_bundle import image_root
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    store = Store(image_root(p.globals))
    image = images.load(store, p.args["image"])
    record = image.to_json()
    for layer, chain_id in zip(record["layers"], layers.chain_ids(image.diff_ids)):
        layer["chain_id"] = chain_id
        layer["unpacked"] = layers.record(store, chain_id) is not None
    record["manifest"] = store.read_json_blob(image.digest, "manifest")
    record["image_config"] = store.read_json_blob(image.config, "image config")
    print(json.dumps(record, indent=2))
    return 0
