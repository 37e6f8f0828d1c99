"""Resource usage of the node, its pods and their containers (the kubelet's stats provider),
and the forms it is served in: the Summary API (/stats/summary) and Prometheus text
(/metrics/resource, /metrics)."""
