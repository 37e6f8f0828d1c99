from __future__ import annotations

from runtime import container as container_mod
from runtime.cli.lean_parser import Parsed
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    c = container_mod.Container.load(p.globals["root"], p.args["container_id"])
    container_mod.start(c, log)
    return 0
