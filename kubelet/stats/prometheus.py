"""Prometheus text exposition format 0.0.4 as client_golang writes it (what the kubelet
serves and metrics-server parses): families sorted by name, each with its HELP (the stability
level in brackets first, as component-base adds it) and TYPE, samples sorted by their label
values, labels by name, values as Go's strconv 'g' shortest form, optional timestamps in
milliseconds."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"


@dataclass
class Sample:
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    timestamp_ms: int | None = None
    suffix: str = ""             # _bucket, _sum, _count of a histogram


@dataclass
class Family:
    name: str
    help: str
    type: str                    # counter, gauge, histogram
    samples: list[Sample] = field(default_factory=list)
    stability: str = "ALPHA"     # ALPHA, BETA, STABLE


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): the shortest digits that read back the same,
    in exponent form when the exponent is below -4 or at least 6 (Go's precision for the
    shortest form): 10, 0.25, 1e+06, 3.3513472e+07."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + exponent            # the decimal point's position in text
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_key(sample: Sample) -> tuple:
    return tuple(v for _, v in sorted(sample.labels.items())), sample.suffix


def render(families: list[Family]) -> str:
    lines = []
    for fam in sorted(families, key=lambda f: f.name):
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} [{fam.stability}] {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        samples = fam.samples if fam.type == "histogram" else sorted(fam.samples,
                                                                      key=_label_key)
        for s in samples:
            name = fam.name + s.suffix
            if s.labels:
                pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(
                    s.labels.items(), key=lambda kv: (kv[0] == "le", kv[0])))
                name += "{" + pairs + "}"
            line = f"{name} {go_float(s.value)}"
            if s.timestamp_ms is not None:
                line += f" {s.timestamp_ms}"
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""
