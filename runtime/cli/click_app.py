"""The click application built from runtime.cli.verbs: help, usage errors, and any command line
the lean parser handed over. A valid line runs exactly as through the lean parser."""
from __future__ import annotations

from collections.abc import Callable

import click

from runtime import VERSION
from runtime.cli.lean_parser import Parsed
from runtime.cli.verbs import FLAG, GLOBAL_OPTIONS, GROUPS_BY_NAME, INT, MULTI, VERBS, Opt, Verb

_HELP = {"help_option_names": ["-h", "--help"]}


def _option(opt: Opt) -> click.Option:
    kwargs: dict = {"help": opt.help}
    if opt.kind == FLAG:
        kwargs["is_flag"] = True
    elif opt.kind == MULTI:
        kwargs.update(multiple=True, metavar=opt.metavar)
    else:
        kwargs.update(default=opt.default, show_default=opt.default is not None)
        if opt.choices:
            kwargs["type"] = click.Choice(opt.choices)
        else:
            kwargs.update(type=int if opt.kind == INT else str, metavar=opt.metavar)
    return click.Option([*opt.names, opt.dest], **kwargs)


def _arg_key(name: str) -> str:
    return name.lstrip("?*").replace("-", "_")


def _argument(name: str) -> click.Argument:
    metavar = name.lstrip("?*").upper()
    if name.startswith("?"):
        metavar = f"[{metavar}]"
    elif name.startswith("*"):
        metavar = f"[{metavar}]..."
    return click.Argument([_arg_key(name)], metavar=metavar,
                          required=not name.startswith(("?", "*")),
                          nargs=-1 if name.startswith("*") else 1)


def _command(verb: Verb, dispatch: Callable[[Parsed], int]) -> click.Command:
    def callback(**values: object) -> None:
        ctx = click.get_current_context()
        options = {o.dest: (list(values[o.dest]) if o.kind == MULTI else values[o.dest])
                   for o in verb.options}
        args = {_arg_key(n): (list(values[_arg_key(n)]) if n.startswith("*") else values[_arg_key(n)])
                for n in verb.args}
        ctx.exit(dispatch(Parsed(ctx.find_root().params, verb, options, args)))

    settings = dict(_HELP, allow_interspersed_args=verb.interspersed,
                    ignore_unknown_options=not verb.interspersed)
    return click.Command(verb.name, callback=callback, help=verb.help, context_settings=settings,
                         params=[*map(_option, verb.options), *map(_argument, verb.args)])


def build(dispatch: Callable[[Parsed], int]) -> click.Group:
    group = click.Group(
        "pycontainer", help="A Linux container runtime that runs OCI bundles, as runc does.",
        context_settings=_HELP, params=[*map(_option, GLOBAL_OPTIONS)],
    )
    group = click.version_option(VERSION, "--version", "-v", prog_name="pycontainer",
                                 message="%(prog)s version %(version)s")(group)
    _add(group, VERBS, dispatch)
    for spec in GROUPS_BY_NAME.values():
        sub = click.Group(spec.name, help=spec.help, context_settings=_HELP)
        _add(sub, spec.verbs, dispatch)
        group.add_command(sub)
    return group


def _add(group: click.Group, verbs: tuple[Verb, ...], dispatch: Callable[[Parsed], int]) -> None:
    for verb in verbs:
        command = _command(verb, dispatch)
        group.add_command(command)
        for alias in verb.aliases:
            group.add_command(command, alias)
