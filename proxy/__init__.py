"""The node's service proxy (`pykube-proxy`): Services and EndpointSlices from the API server
turned into nftables rules as kube-proxy's nftables mode writes them (ClusterIP, NodePort,
external IPs, ClientIP affinity, Local traffic policies). model -> rules -> syncer; proxier
drives the syncer from informers; cli is the command."""
