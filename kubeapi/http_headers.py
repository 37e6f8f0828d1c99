"""The header block of an HTTP/1.1 message, read from a binary file without the email package
(whose parser was 10-14 % of the API server's and the kubelet's CPU per request).

Strict as Go's net/http is: a field name is a token followed at once by a colon, values hold no
control characters but tab, an obs-fold continues the previous field with one space, and a block
is bounded as http.client bounds it (line length, number of lines)."""
from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import BinaryIO

# http.client's bounds (its _MAXLINE and _MAXHEADERS).
MAX_LINE = 65536
MAX_HEADERS = 100

# RFC 9110's token for the name; a value holds no CTL but tab (so no CR or LF either). Greedy,
# with the trailing spaces stripped after: a lazy value took twice the time of the whole parse.
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r?\n")
_FOLD = re.compile(rb"[ \t]+([^\x00-\x08\x0a-\x1f\x7f]*)\r?\n")


class HeaderError(http.client.HTTPException):
    """A header block we refuse; `status` is the answer a server gives it (431 or 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Headers:
    """The fields of one message in the order sent, looked up by name in any case. The subset of
    email.message.Message that http.client and our handlers use: a missing name is None."""

    __slots__ = ("_fields", "_first")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field of that name, as Go's Header.Get and email's Message.get give it."""
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        key = name.lower()
        found = [value for field, value in self._fields if field.lower() == key]
        return found or default

    def lowered(self) -> dict[str, str]:
        """Lower-case name -> first value."""
        return dict(self._first)

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [name for name, _ in self._fields]

    def values(self) -> list[str]:
        return [value for _, value in self._fields]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._fields)


def read_headers(fp: BinaryIO) -> Headers:
    """The fields up to the empty line that ends the block (or the end of the file, as
    http.client takes it). HeaderError(431) for a line over MAX_LINE or more than MAX_HEADERS
    lines, HeaderError(400) for a line that is not a field."""
    fields: list[tuple[str, str]] = []
    for _ in range(MAX_HEADERS):  # lines, the empty one included, as http.client counts them
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeaderError(431, "header line too long")
        if line in (b"\r\n", b"\n", b""):
            return Headers(fields)
        field = _FIELD.fullmatch(line)
        if field is not None:
            fields.append((field[1].decode("latin-1"),
                           field[2].rstrip(b" \t").decode("latin-1")))
            continue
        fold = _FOLD.fullmatch(line)
        if fold is None or not fields:
            raise HeaderError(400, f"malformed header line {line[:64]!r}")
        # An obs-fold: the line continues the field before it, joined by one space.
        name, value = fields[-1]
        more = fold[1].rstrip(b" \t").decode("latin-1")
        fields[-1] = (name, f"{value} {more}" if value and more else value or more)
    raise HeaderError(431, f"got more than {MAX_HEADERS} headers")
