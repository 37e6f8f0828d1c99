from __future__ import annotations

import json

from runtime.cli_parse import Parsed
from runtime.container import Container
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    c = Container.load(p.globals["root"], p.args["container_id"], lock=False)
    print(json.dumps(c.oci_state(), indent=2))
    return 0
