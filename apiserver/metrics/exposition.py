"""Reading the Prometheus text exposition format (what a kubelet's /metrics/resource serves):
the samples with their labels, values and optional millisecond timestamps. Comment lines are
skipped; a malformed sample line is an error, as Prometheus' text parser makes it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


class ExpositionError(ValueError):
    pass


@dataclass
class Series:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    timestamp_ms: int | None = None


def _labels(text: str, line: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m or m.end() == pos:
            raise ExpositionError(f"malformed labels in {line!r}")
        labels[m.group(1)] = _UNESCAPE.sub(
            lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))
        pos = m.end()
    return labels


def parse(text: str) -> list[Series]:
    found = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ExpositionError(f"malformed sample {line!r}")
        name, labels, value, timestamp = m.groups()
        try:
            number = float(value)
        except ValueError:
            raise ExpositionError(f"value {value!r} of {name} is not a number") from None
        found.append(Series(name, number, _labels(labels or "", line),
                            int(timestamp) if timestamp is not None else None))
    return found
