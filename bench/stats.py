"""What the benches measure and print: a process's CPU seconds and resident memory; median, p90
and percentiles of a sample list, the ratio of medians, and the machine's load (the figures
mean little without it)."""
from __future__ import annotations

import os
import statistics

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid: int) -> float:
    """The process's own user and system CPU seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
