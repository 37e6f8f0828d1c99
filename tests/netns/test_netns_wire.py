"""Our rtnetlink client (netns/netlink.py, rtnl.py) read against pyroute2's: in a namespace of
the test's own with a bridge, a veth pair on it, addresses of both families and routes (with a
metric and a gateway) made by our code, both libraries must see the same links, addresses and
routes."""
import socket

import pytest

from netns import addresses, enter, links, routes, rtnl, sysctl

pytestmark = pytest.mark.root


def _pyroute2_view():
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = {}
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            found[link["index"]] = (
                link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_ADDRESS") or "",
                link.get_attr("IFLA_MTU"), link.get_attr("IFLA_MASTER") or 0,
                bool(link["flags"] & 1), (info.get_attr("IFLA_INFO_KIND") if info else "") or "")
        addrs = sorted(f"{a.get_attr('IFA_LOCAL') or a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                       for a in ipr.get_addr())
        table = sorted((f"{r.get_attr('RTA_DST') or '0.0.0.0'}/{r['dst_len']}",
                        r.get_attr("RTA_GATEWAY") or "", r.get_attr("RTA_OIF") or 0)
                       for r in ipr.get_routes(family=socket.AF_INET, table=254))
    return found, addrs, table


def test_our_client_and_pyroute2_agree(namespaces):
    pod = namespaces.new()
    # No IPv6 link-local addresses: the kernel adds them in its own time after a link comes up,
    # so one of the two reads below could see them and the other not.
    enter.run_in_netns(pod, sysctl.write, "net.ipv6.conf.default.addr_gen_mode", "1")
    with rtnl.open_in(pod) as sock:
        bridge = links.create_bridge(sock, "br0", mtu=1400)
        links.create_veth(sock, "veth0", "eth0", mtu=1400)
        veth = links.get_link(sock, "veth0")
        links.set_master(sock, veth.index, bridge.index)
        for index in (bridge.index, veth.index, links.get_link(sock, "eth0").index):
            links.set_up(sock, index)
        addresses.add_address(sock, bridge.index, "198.18.201.1/24")
        addresses.add_address(sock, bridge.index, "fd00:198:18::1/64")
        routes.add_route(sock, "198.19.201.0/24", "198.18.201.7", mtu=1300, priority=10)
        ours = ({link.index: (link.name, link.mac, link.mtu, link.master, link.up, link.kind)
                 for link in links.list_links(sock)},
                sorted(addresses.list_addresses(sock)),
                sorted((r.dst, r.gateway, r.oif) for r in routes.list_routes(sock)))
    assert ours == enter.run_in_netns(pod, _pyroute2_view)
    assert ("198.19.201.0/24", "198.18.201.7", bridge.index) in ours[2]
