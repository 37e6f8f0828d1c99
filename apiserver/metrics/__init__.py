"""metrics.k8s.io/v1beta1 built into the API server, as metrics-server serves it: NodeMetrics
and PodMetrics computed from two scrapes of each Ready node's kubelet /metrics/resource."""
