"""Cron schedules as CronJob's spec.schedule takes them: the five standard fields and the
@descriptors of robfig/cron's ParseStandard, with its error texts (kube-apiserver puts them
after `spec.schedule: Invalid value: "...": `). Also next-run times for a CronJob controller."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}),
           (1, 12, {m: i + 1 for i, m in enumerate(
               ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                "dec"))}),
           (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri",
                                               "sat"))}))
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$")


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    """The allowed values of each field, or a fixed interval for @every."""
    fields: tuple[frozenset[int], ...] = ()
    every: timedelta | None = None
    dom_star: bool = False
    dow_star: bool = False

    def next_after(self, t: datetime) -> datetime:
        """The first activation strictly after t (minute resolution)."""
        if self.every is not None:
            return t + self.every
        t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        minutes, hours, doms, months, dows = self.fields
        for _ in range(60 * 24 * 366 * 5):
            if t.month not in months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            dom_ok, dow_ok = t.day in doms, (t.weekday() + 1) % 7 in dows
            day_ok = dom_ok and dow_ok if (self.dom_star or self.dow_star) else dom_ok or dow_ok
            if not day_ok:
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in minutes:
                t += timedelta(minutes=1)
                continue
            return t
        raise CronError("no activation time found")


def _int(expr: str) -> int:
    try:
        num = int(expr, 10)
        if not re.fullmatch(r"[+-]?\d+", expr):
            raise ValueError
    except ValueError:
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": '
                        'invalid syntax') from None
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, names: dict[str, int]) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _int(expr)


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if len(low_and_high) > 2:
        raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _int_or_name(low_and_high[0], names)
        end = _int_or_name(low_and_high[1], names) if len(low_and_high) == 2 else start
    step = 1
    if len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_and_high) == 1 and low_and_high[0] not in ("*", "?"):
            end = high  # "N/step" means N-max/step
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step))


def _duration(text: str) -> timedelta:
    if not _DURATION.match(text):
        raise CronError(f'failed to parse duration {text}: time: invalid duration "{text}"')
    unit_seconds = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total = sum(float(n) * unit_seconds[u]
                for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)", text))
    return timedelta(seconds=max(int(total), 1))


def parse(spec: str) -> Schedule:
    """ParseStandard: five fields or a descriptor. Raises CronError with robfig's words."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            return Schedule(every=_duration(spec[len("@every "):].strip()))
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: "
                        f"[{' '.join(fields)}]")
    values = []
    for text, (low, high, names) in zip(fields, _BOUNDS):
        allowed: set[int] = set()
        for part in text.split(","):
            allowed |= _range(part, low, high, names)
        values.append(frozenset(allowed))
    return Schedule(tuple(values), dom_star=fields[2] in ("*", "?"),
                    dow_star=fields[4] in ("*", "?"))
