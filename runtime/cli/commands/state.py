from __future__ import annotations

from runtime import fastjson
from runtime.cli.lean_parser import Parsed
from runtime.container import Container
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    c = Container.load(p.globals["root"], p.args["container_id"], lock=False)
    print(fastjson.dumps_indented(c.oci_state()))
    return 0
