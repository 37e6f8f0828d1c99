"""The names the CNI spec allows for networks and container IDs: a letter or digit, then
letters, digits, '_', '.' or '-'. Checked without `re`, which a plugin process does not
otherwise import."""
from __future__ import annotations

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _ALNUM | frozenset("_.-")


def valid(name: str) -> bool:
    return bool(name) and name[0] in _ALNUM and all(c in _REST for c in name)
