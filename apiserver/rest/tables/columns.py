"""What the tables of every kind share: kube's duration and age formats, a column definition, the
Name and Age columns and a row made of the name and some cells."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

NONE = "<none>"


def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration: 45s, 5m3s, 3h, 2d4h, 1y30d..."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // (24 * 365)}y{(h // 24) % 365}d"
    return f"{h // (24 * 365)}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        t = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(timezone.utc) - t).total_seconds())


def column(name: str, kind: str = "string", priority: int = 0, fmt: str = "",
           description: str = "") -> dict:
    """One TableColumnDefinition."""
    return {"name": name, "type": kind, "format": fmt, "description": description,
            "priority": priority}


NAME = column("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = column("Age", description="CreationTimestamp is a timestamp representing the server time "
             "when this object was created.")


def meta(o: dict) -> dict:
    return o.get("metadata") or {}


def simple(*cells: Callable[[dict], object]) -> Callable[[dict], list]:
    return lambda o: [meta(o).get("name")] + [c(o) for c in cells]


def created(o: dict) -> str:
    return age(meta(o).get("creationTimestamp"))
