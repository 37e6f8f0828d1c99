"""CNI spec versions: which we speak, comparison, and the result shape of each version."""
from __future__ import annotations

from .errors import INCOMPATIBLE_VERSION, CNIError

SUPPORTED = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = SUPPORTED[-1]


def parse(version: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise CNIError(INCOMPATIBLE_VERSION, f"invalid cniVersion {version!r}")
    return parts  # type: ignore[return-value]


def at_least(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)


def check_supported(version: str) -> None:
    if version not in SUPPORTED:
        parse(version)
        raise CNIError(INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f"config is {version!r}, plugin supports {list(SUPPORTED)}")


def convert_result(result: dict, version: str) -> dict:
    """Returns `result` in the shape of `version`: before 1.0.0 each IP carries "version"
    ("4"/"6"); from 1.0.0 on it does not."""
    out = dict(result)
    out["cniVersion"] = version
    old = not at_least(version, "1.0.0")
    ips = []
    for ip in result.get("ips") or []:
        ip = dict(ip)
        if old:
            ip["version"] = "6" if ":" in ip.get("address", "") else "4"
        else:
            ip.pop("version", None)
        ips.append(ip)
    if "ips" in result:
        out["ips"] = ips
    return out
