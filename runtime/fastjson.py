"""JSON through `_json`, the C accelerator the standard json package is built on, without the
package itself: importing `json` brings `re` along (5 ms, a fifth of a container start), and a
start reads and writes JSON only a few times. Output is compact (no spaces), as runc writes it.
Only text that fails to parse loads json.decoder, to say what is wrong and where.
"""
from __future__ import annotations

import _json


class _Decoding:
    """The attributes _json.make_scanner reads from its context."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")


def _unencodable(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_scan = _json.make_scanner(_Decoding())
_encode = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None, ":", ",",
                             False, False, False)
_WHITESPACE = " \t\n\r"


class JSONError(ValueError):
    """Text that is not JSON: what is wrong and where, as line and column (from 1)."""

    def __init__(self, problem: str, text: str | bytes, position: int) -> None:
        newline = "\n" if isinstance(text, str) else b"\n"
        self.line = text.count(newline, 0, position) + 1
        self.column = position - text.rfind(newline, 0, position)
        super().__init__(f"{problem} at line {self.line}, column {self.column}")


def loads(text: str | bytes) -> object:
    """Like json.loads, without NaN or Infinity; a JSONError says what is wrong and where."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as e:
            raise JSONError(f"byte 0x{text[e.start]:02x} is not UTF-8", text, e.start) from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise JSONError("expecting a value", text, e.value) from None
    except RecursionError:
        raise JSONError("arrays and objects are nested too deeply", text, start) from None
    except (SystemError, ValueError):
        raise _explained(text, start) from None
    rest = text[end:].lstrip(_WHITESPACE)
    if rest:
        raise JSONError("extra data after the value", text, len(text) - len(rest))
    return value


def _explained(text: str, start: int) -> ValueError:
    """The error of a failed scan, with its position. The C scanner reports syntax errors as
    json.decoder.JSONDecodeError, and Python 3.11's fails with a bare SystemError unless that
    module is already loaded; it pulls in `re`, so only a failed scan pays for it."""
    import json.decoder

    try:
        _scan(text, start)
    except json.decoder.JSONDecodeError as e:
        # Some of its messages end in "at", made to be followed by the position.
        problem = e.msg.removesuffix(" at")
        return JSONError(problem[:1].lower() + problem[1:], text, e.pos)
    except ValueError as e:  # parse_constant: NaN or Infinity
        return e
    return JSONError("cannot be read as JSON", text, start)


def dumps(value: object) -> str:
    return "".join(_encode(value, 0))


def dumps_indented(value: object, indent: str = "  ", _level: int = 0) -> str:
    """json.dumps(value, indent=2), as `state` prints it (runc indents too)."""
    if isinstance(value, dict) and value:
        inner = indent * (_level + 1)
        items = [f"{inner}{dumps(str(key))}: {dumps_indented(item, indent, _level + 1)}"
                 for key, item in value.items()]
    elif isinstance(value, (list, tuple)) and value:
        inner = indent * (_level + 1)
        items = [f"{inner}{dumps_indented(item, indent, _level + 1)}" for item in value]
    else:
        return dumps(value)
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    return f"{opening}\n" + ",\n".join(items) + f"\n{indent * _level}{closing}"
