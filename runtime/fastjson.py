"""JSON through `_json`, the C accelerator the standard json package is built on, without the
package itself: importing `json` brings `re` along (5 ms, a fifth of a container start), and a
start reads and writes JSON only a few times. Output is compact (no spaces), as runc writes it.
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


def loads(text: str | bytes) -> object:
    """Like json.loads; a ValueError says what is wrong and where."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"expecting a value at character {e.value}") from None
    rest = text[end:].strip(_WHITESPACE)
    if rest:
        raise ValueError(f"extra data at character {len(text) - len(text[end:].lstrip(_WHITESPACE))}")
    return value


def dumps(value: object) -> str:
    return "".join(_encode(value, 0))
