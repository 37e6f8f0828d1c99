"""How metrics.k8s.io objects print their values, as Go does: CPU as a DecimalSI quantity of
nanocores and memory as a BinarySI quantity of bytes in canonical form (200m, 123456789n,
52680Ki), and a window as time.Duration.String() (15.012s, 1m0.5s)."""
from __future__ import annotations

_DECIMAL = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P",
            18: "E"}
_BINARY = (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10))


def cpu_quantity(nano_cores: int) -> str:
    if nano_cores == 0:
        return "0"
    mantissa, exponent = nano_cores, -9
    while mantissa % 10 == 0 and exponent < 18:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    return f"{mantissa}{_DECIMAL[exponent]}"


def memory_quantity(n: int) -> str:
    for suffix, shift in _BINARY:
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_duration(seconds: float) -> str:
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(f'{ns / 1e3:.3f}')}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(f'{ns / 1e6:.6f}')}ms"
    hours, rest = divmod(ns, 3600 * 10 ** 9)
    minutes, rest = divmod(rest, 60 * 10 ** 9)
    whole, frac = divmod(rest, 10 ** 9)
    secs = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
