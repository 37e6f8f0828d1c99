"""Network namespaces and links: named netns, veth pairs, bridges, addresses, routes, sysctls
and NAT rules, each in its own module, over a small rtnetlink client of our own (rtnl.py,
netlink.py)."""
