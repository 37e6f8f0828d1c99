"""The lean parser: runs every well-formed `pycontainer` command line against runtime.cli.verbs
without importing click (25 ms of imports, as long as runc takes to run a container).

It gives up (returns None) on anything it would have to explain: help, an unknown flag, a
missing argument, a bad value. The click application then parses the same line and prints the
usage error or help, from the same table.
"""
from __future__ import annotations

from runtime.cli.verbs import FLAG, GLOBAL_OPTIONS, GROUPS_BY_NAME, INT, MULTI, VERBS_BY_NAME, \
    Opt, Verb

_HELP = ("-h", "--help")


class Parsed:
    __slots__ = ("globals", "verb", "options", "args")

    def __init__(self, globals: dict, verb: Verb, options: dict, args: dict) -> None:
        self.globals = globals
        self.verb = verb
        self.options = options
        self.args = args


class _GiveUp(Exception):
    pass


def parse(argv: list[str]) -> Parsed | None:
    try:
        return _parse(argv)
    except _GiveUp:
        return None


def _parse(argv: list[str]) -> Parsed:
    rest = list(argv)
    globals_ = _options(GLOBAL_OPTIONS, rest, interspersed=False)
    if not rest:
        raise _GiveUp
    word = rest.pop(0)
    group = GROUPS_BY_NAME.get(word)
    if group is not None:
        if not rest:
            raise _GiveUp
        verb = group.verbs_by_name.get(rest.pop(0))
    else:
        verb = VERBS_BY_NAME.get(word)
    if verb is None:
        raise _GiveUp
    options = _options(verb.options, rest, verb.interspersed)
    return Parsed(globals_, verb, options, _positionals(verb, rest))


def _options(table: tuple[Opt, ...], rest: list[str], interspersed: bool) -> dict:
    """Consumes the options in `rest` (in place), leaving the positional words."""
    by_name = {name: opt for opt in table for name in opt.names}
    values = {opt.dest: (list(opt.default) if opt.kind == MULTI else opt.default) for opt in table}
    positional: list[str] = []
    while rest:
        word = rest[0]
        if word == "--":
            rest.pop(0)
            positional.extend(rest)
            rest.clear()
            break
        if not word.startswith("-") or word == "-":
            if not interspersed:
                break
            positional.append(rest.pop(0))
            continue
        if word in _HELP:
            raise _GiveUp
        rest.pop(0)
        name, eq, inline = word.partition("=")
        opt = by_name.get(name)
        if opt is None:
            raise _GiveUp
        if opt.kind == FLAG:
            if eq:
                if inline not in ("true", "false"):
                    raise _GiveUp
                values[opt.dest] = inline == "true"
            else:
                values[opt.dest] = True
            continue
        if eq:
            value = inline
        elif rest:
            value = rest.pop(0)
        else:
            raise _GiveUp
        if opt.choices and value not in opt.choices:
            raise _GiveUp
        if opt.kind == INT:
            if not value.isdigit():
                raise _GiveUp
            values[opt.dest] = int(value)
        elif opt.kind == MULTI:
            values[opt.dest].append(value)
        else:
            values[opt.dest] = value
    rest[:0] = positional
    return values


def _positionals(verb: Verb, words: list[str]) -> dict:
    args: dict = {}
    for name in verb.args:
        key = name.lstrip("?*").replace("-", "_")
        if name.startswith("*"):
            args[key] = list(words)
            words.clear()
        elif words:
            args[key] = words.pop(0)
        elif name.startswith("?"):
            args[key] = None
        else:
            raise _GiveUp
    if words:
        raise _GiveUp
    return args
