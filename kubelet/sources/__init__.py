"""Where pods come from (the kubelet's pkg/kubelet/config): the API server's pods bound to this
node (api), static pod files (static), and the mirror pods that show static pods in the API
(mirror)."""
