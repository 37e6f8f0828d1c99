"""`pycontainer`: the entry point. Parses with the lean parser, hands anything it cannot handle
to click, and runs the verb's module from runtime.cli.commands."""
from __future__ import annotations

import sys

from runtime import VERSION

from runtime.cli import lean_parser
from runtime.errors import PycontainerError
from runtime.log import Log


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-v"]):
        print(f"pycontainer version {VERSION}\nspec: {_spec_version()}\npython: {sys.version.split()[0]}")
        return 0
    parsed = lean_parser.parse(argv)
    if parsed is None:
        from runtime.cli import click_app

        return click_app.build(dispatch).main(argv, prog_name="pycontainer")
    return dispatch(parsed)


def _spec_version() -> str:
    from runtime.container import OCI_VERSION

    return OCI_VERSION


def dispatch(parsed: lean_parser.Parsed) -> int:
    g = parsed.globals
    log = Log(g["log"], g["log_format"], g["debug"])
    # __import__, not importlib.import_module: importlib brings `warnings` along.
    command = __import__(f"runtime.cli.commands.{parsed.verb.module}", fromlist=["run"])
    try:
        return command.run(parsed, log)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # Ours, OSError and ValueError (the cgroups package's CgroupError is one) say what went
        # wrong by themselves; anything else is a bug, named by its type. Either way the user
        # gets one line, and the traceback only with --debug.
        if g["debug"]:
            import traceback

            log.debug("".join(traceback.format_exception(e)))
        known = isinstance(e, (PycontainerError, OSError, ValueError))
        log.error(one_line(e) if known else f"internal error: {type(e).__name__}: {one_line(e)}")
        return 1


def one_line(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, OSError) and not isinstance(error, PycontainerError):
        text = error.strerror or text
        if error.filename:
            text = f"{error.filename}: {text}"
    # Any line break, \r and Unicode's included: a field name or path from the input can hold one.
    return " ".join(text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
