"""JSON in and out through the json package's C accelerator (`_json`), giving exactly what
json.loads and json.dumps give with their defaults, without importing the json package: its
Python modules import re, and re imports enum, which together cost a plugin process about as
much as the interpreter's own start. What the fast path does not take (a document that is not
plain UTF-8, a syntax error, an object JSON cannot encode) goes to the json package, so that
results and errors are json's own."""
from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"  # JSON's, as json.decoder skips it
_UTF8_BOM = b"\xef\xbb\xbf"


class _Defaults:
    """The attributes that _json.make_scanner reads from a json.JSONDecoder(), as defaulted."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


# Stateless between calls (its memo is cleared after each), like json's own default decoder.
_scan = _json.make_scanner(_Defaults())


def loads(data: bytes | str):
    """json.loads(data)."""
    text = data
    if isinstance(data, bytes):
        # json.loads detects UTF-16/32 by NUL bytes and strips a UTF-8 BOM: leave those to it.
        if data.startswith(_UTF8_BOM) or b"\0" in data[:4]:
            return _json_loads(data)
        try:
            text = data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _json_loads(data)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):
        # A syntax error. The scanner raises it as json.decoder's JSONDecodeError, and on
        # Python 3.11 fails with SystemError when json.decoder is not imported yet.
        return _json_loads(data)
    if text[end:].strip(_WHITESPACE):
        return _json_loads(data)  # "Extra data"
    return value


def _refuse(obj):
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def dumps(obj) -> str:
    """json.dumps(obj)."""
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    # Arguments as json.JSONEncoder() passes them: circular check (a fresh markers dict), ASCII
    # output, no indent, ": " and ", ", keys unsorted, none skipped, NaN allowed.
    encode = _json.make_encoder({}, _refuse, _json.encode_basestring_ascii, None, ": ", ", ",
                                False, False, True)
    try:
        return "".join(encode(obj, 0))
    except (TypeError, ValueError, RecursionError):
        import json

        return json.dumps(obj)  # raises json's own error


def _json_loads(data: bytes | str):
    import json

    return json.loads(data)
