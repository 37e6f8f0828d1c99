"""The REST layer: a parsed HTTP request (apiserver/request.py) routed to the stores, discovery
and the other APIs, and the Table output of its answers."""
