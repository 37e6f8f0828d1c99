from __future__ import annotations

import json
import os
import pwd

from runtime import state as state_mod
from runtime.cli.lean_parser import Parsed
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.log import Log

_COLUMNS = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")


def run(p: Parsed, log: Log) -> int:
    root = p.globals["root"]
    rows = []
    for container_id in state_mod.list_ids(root):
        try:
            c = Container.load(root, container_id, lock=False)
        except PycontainerError:
            continue  # being created or deleted right now
        entry = c.oci_state()
        entry.pop("annotations", None)
        entry["owner"] = _owner(c.state_dir.path)
        rows.append(entry)
    if p.options["quiet"]:
        for row in rows:
            print(row["id"])
    elif p.options["format"] == "json":
        print(json.dumps(rows))
    else:
        _table([[str(r["id"]), str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]]
                for r in rows])
    return 0


def _owner(path: str) -> str:
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _table(rows: list[list[str]]) -> None:
    """runc's tabwriter layout: each column as wide as its longest cell plus 3, at least 12."""
    table = [list(_COLUMNS), *rows]
    widths = [max(12, max(len(r[i]) for r in table) + 3) for i in range(len(_COLUMNS) - 1)]
    for r in table:
        print("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1])
