"""What the benches print: median, p90 and percentiles of a sample list, the ratio of medians,
and the machine's load (the figures mean little without it)."""
from __future__ import annotations

import os
import statistics


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile, nearest rank between the smallest and the largest sample."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
