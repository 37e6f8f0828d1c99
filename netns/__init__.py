"""Network namespaces and links: named netns, veth pairs, bridges, addresses, routes, sysctls
and NAT rules, each in its own module. Built on pyroute2's rtnetlink messages (see rtnl.py)."""
