from __future__ import annotations

import _signal as signal

from runtime import signals
from runtime.cli.lean_parser import Parsed
from runtime.container import Container
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    sig = signals.parse(p.args["signal"]) if p.args["signal"] else int(signal.SIGTERM)
    c = Container.load(p.globals["root"], p.args["container_id"])
    c.signal(sig, all_processes=p.options["all"])
    return 0
