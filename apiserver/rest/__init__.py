"""The REST layer: a parsed HTTP request (request.py) routed to the stores, discovery and the
other APIs."""
