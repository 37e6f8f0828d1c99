"""Pod status (the kubelet's generateAPIPodStatus and pkg/kubelet/status): the API status of a
pod from its spec and what the runtime reports (pod_status), and the manager that writes it to
the API server (manager)."""
