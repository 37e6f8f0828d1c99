from __future__ import annotations

import json

from runtime.cli.lean_parser import Parsed
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    c = Container.load(p.globals["root"], p.args["container_id"], lock=False)
    pids = c.cgroup().pids() if c.cgroup().exists() else []
    if p.options["format"] == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    ps_args = p.args["ps_options"] or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise PycontainerError("ps: the ps command is not installed on this host") from None
    except subprocess.CalledProcessError as e:
        raise PycontainerError(f"ps {' '.join(ps_args)}: {e.stderr.strip()}") from None
    lines = out.splitlines()
    header = lines[0].split()
    if "PID" not in header:
        raise PycontainerError("ps: the output has no PID column")
    column = header.index("PID")
    print(lines[0])
    wanted = {str(pid) for pid in pids}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column] in wanted:
            print(line)
    return 0
