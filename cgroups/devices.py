"""OCI linux.resources.devices rules -> cgroup v1 devices.allow / devices.deny lines."""
from __future__ import annotations


def v1_lines(rules: list[dict]) -> list[tuple[int, str, str]]:
    """(rule index, file name, line) triples to write in order, for validated rules.

    The kernel reads a line starting with "a" as "every device, every access" whatever follows,
    so a type-"a" rule narrower than that is spelled out for block and char devices instead.
    """
    writes = []
    for i, rule in enumerate(rules):
        name = "devices.allow" if rule["allow"] else "devices.deny"
        major, minor = _number(rule.get("major")), _number(rule.get("minor"))
        access = rule["access"]
        kind = rule.get("type") or "a"
        if kind == "a" and major == minor == "*" and set(access) == set("rwm"):
            writes.append((i, name, "a"))
        elif kind == "a":
            writes.extend((i, name, f"{k} {major}:{minor} {access}") for k in ("b", "c"))
        else:
            writes.append((i, name, f"{kind} {major}:{minor} {access}"))
    return writes


def _number(value: int | None) -> str:
    return "*" if value is None or value == -1 else str(value)


def v1_semantics(rules: list[dict]) -> tuple[bool, list[tuple[str, int, int, str]]]:
    """What the cgroup v1 devices controller would end up with after these rules, starting from
    "allow everything" (a fresh cgroup): (default allow?, exceptions to that default), each
    exception (type "b"/"c", major or -1, minor or -1, access letters).

    The v2 eBPF filter is generated from this, so a rule list means the same on v1 and v2
    (runc reaches the same end with its devices emulator).
    """
    default_allow = True
    exceptions: dict[tuple[str, int, int], set[str]] = {}
    for _, name, line in v1_lines(rules):
        allow = name == "devices.allow"
        if line == "a":
            default_allow = allow
            exceptions.clear()
            continue
        kind, numbers, access = line.split()
        major, minor = (-1 if n == "*" else int(n) for n in numbers.split(":"))
        key = (kind, major, minor)
        if allow != default_allow:  # the kernel adds an exception...
            exceptions.setdefault(key, set()).update(access)
        elif key in exceptions:  # ...or takes access away from the exactly matching one
            exceptions[key] -= set(access)
            if not exceptions[key]:
                del exceptions[key]
    return default_allow, [(k, mj, mn, "".join(sorted(a))) for (k, mj, mn), a in exceptions.items()]
