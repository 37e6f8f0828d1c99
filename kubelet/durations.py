"""Go duration strings ("1m0s", "300ms", "10s", "1h30m"), as KubeletConfiguration writes them."""
from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: object, field: str) -> float:
    """Seconds; ValueError naming `field` for anything that is not a Go duration."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)  # a bare number in YAML: seconds would be a guess, but a harmless one
    if not isinstance(text, str) or not text:
        raise ValueError(f"{field}: {text!r} is not a duration like 10s or 1m30s")
    sign = -1.0 if text.startswith("-") else 1.0
    rest = text.lstrip("+-")
    if rest == "0":
        return 0.0
    total, pos = 0.0, 0
    for m in _PART.finditer(rest):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(rest) or pos == 0:
        raise ValueError(f"{field}: {text!r} is not a duration like 10s or 1m30s")
    return sign * total
