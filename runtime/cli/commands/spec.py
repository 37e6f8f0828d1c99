from __future__ import annotations

import json
import os

from runtime.cli.lean_parser import Parsed
from runtime.default_spec import default_spec
from runtime.errors import PycontainerError
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    if p.options["rootless"]:
        raise PycontainerError("--rootless: rootless containers are not supported by pycontainer")
    import cgroups

    path = os.path.join(p.options["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise PycontainerError(f"{path} exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(cgroups.detect_mode() == "v2"), f, indent=2)
        f.write("\n")
    return 0
