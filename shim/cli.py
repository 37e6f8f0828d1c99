"""`pycontainer-shim`: starts a container under a new shim, prints the shim's PID once the
container runs (exit 0), or the runtime's error line (exit 1).

    pycontainer-shim --id ID --bundle DIR [--root DIR] [--log FILE] [--stdin FIFO]
                     [--runtime BIN] [--runtime-root DIR]
"""
from __future__ import annotations

import argparse
import sys

from runtime.state import DEFAULT_ROOT as RUNTIME_ROOT
from shim.launch import start
from shim.layout import DEFAULT_ROOT
from shim.records import ShimConfig, ShimError, default_runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pycontainer-shim", description="Start a container under its own shim process.")
    parser.add_argument("--id", required=True, help="the container's ID")
    parser.add_argument("--bundle", required=True, help="the OCI bundle directory")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help=f"the shims' state root (default {DEFAULT_ROOT})")
    parser.add_argument("--log", help="the container's log file, in the CRI format "
                        "(default: its output is dropped)")
    parser.add_argument("--stdin", help="a fifo whose writer feeds the container's stdin")
    parser.add_argument("--runtime", default=None,
                        help="the OCI runtime binary (default: pycontainer)")
    parser.add_argument("--runtime-root", default=RUNTIME_ROOT,
                        help=f"the runtime's --root (default {RUNTIME_ROOT})")
    args = parser.parse_args(argv)
    config = ShimConfig(id=args.id, bundle=args.bundle, log_path=args.log, stdin=args.stdin,
                        shim_root=args.root, runtime_root=args.runtime_root,
                        runtime=args.runtime or default_runtime())
    try:
        info = start(config)
    except ShimError as e:
        print(f"pycontainer-shim: {e}", file=sys.stderr)
        return 1
    print(info.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
