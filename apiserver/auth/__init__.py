"""Who a request comes from (authn.py), what it may do (authz.py), and the review APIs that
answer both questions for others (reviews.py)."""
