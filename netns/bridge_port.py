"""Bridge port settings of a link in the caller's namespace, through sysfs."""
from __future__ import annotations


def set_hairpin(ifname: str, on: bool) -> None:
    """Lets frames go back out of the port they came in on (a pod reaching itself through a
    host port)."""
    with open(f"/sys/class/net/{ifname}/brport/hairpin_mode", "w") as f:
        f.write("1" if on else "0")


def get_hairpin(ifname: str) -> bool:
    with open(f"/sys/class/net/{ifname}/brport/hairpin_mode") as f:
        return f.read().strip() == "1"
