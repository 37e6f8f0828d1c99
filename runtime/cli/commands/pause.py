from __future__ import annotations

from runtime.cli.lean_parser import Parsed
from runtime.container import RUNNING, Container
from runtime.errors import StateError
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    c = Container.load(p.globals["root"], p.args["container_id"])
    if c.status() != RUNNING:
        raise StateError("container not running")
    c.cgroup().freeze()
    return 0
