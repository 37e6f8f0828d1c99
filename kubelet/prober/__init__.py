"""Probes and hooks (the kubelet's pkg/kubelet/prober and lifecycle handlers): one worker per
probe of each running container (manager), and the handlers they and the lifecycle hooks run:
exec through the CRI, httpGet, tcpSocket (handlers) and grpc (grpc_probe)."""
