"""The CRI v1 protocol: kubernetes/cri-api's api.proto and the Python modules grpcio-tools
generates from it (README.md says which release and how)."""
