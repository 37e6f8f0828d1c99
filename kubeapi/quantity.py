"""Resource quantities ("100m", "64Mi", "1.5G") parsed to exact fractions, as resource.Quantity."""
from __future__ import annotations

import re
from fractions import Fraction

_SUFFIX = {
    "": 1, "m": Fraction(1, 1000), "u": Fraction(1, 10**6), "n": Fraction(1, 10**9),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_RE = re.compile(r"^([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)(?:([eE][+-]?[0-9]+)|"
                 r"(Ki|Mi|Gi|Ti|Pi|Ei|m|u|n|k|M|G|T|P|E)?)$")


def parse_quantity(text: object) -> Fraction:
    """Raises ValueError with kube's wording for anything that is not a quantity."""
    if isinstance(text, bool):
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    if isinstance(text, (int, float)):
        return Fraction(str(text))
    m = _RE.match(str(text).strip())
    if not m:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, exponent, suffix = m.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    return value * _SUFFIX[suffix or ""]
