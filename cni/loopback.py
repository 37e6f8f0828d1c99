"""pycni-loopback: brings the container's loopback interface up (down on DEL)."""
from __future__ import annotations

from netns import addresses, links

from . import sandbox, skel
from .errors import INTERNAL, CNIError
from .results import prev_result


def add(args: skel.Args, conf: dict) -> dict:
    prev = prev_result(conf, required=False, plugin="loopback")
    with sandbox.Sandbox(args.netns) as sb:
        lo = links.get_link(sb.rtnl, "lo")
        links.set_up(sb.rtnl, lo.index)
        present = addresses.list_addresses(sb.rtnl, lo.index)
    if prev is not None:
        return prev
    return {"cniVersion": conf["cniVersion"],
            "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": args.netns}],
            "ips": [{"address": a, "interface": 0} for a in present]}


def delete(args: skel.Args, conf: dict) -> None:
    if not sandbox.exists(args.netns):
        return  # the namespace is gone, and its loopback with it
    with sandbox.Sandbox(args.netns) as sb:
        lo = links.get_link(sb.rtnl, "lo")
        if lo is not None:
            links.set_down(sb.rtnl, lo.index)


def check(args: skel.Args, conf: dict) -> None:
    with sandbox.Sandbox(args.netns) as sb:
        lo = links.get_link(sb.rtnl, "lo")
    if lo is None or not lo.up:
        raise CNIError(INTERNAL, "loopback interface is down")


HANDLERS = {"ADD": add, "DEL": delete, "CHECK": check}

