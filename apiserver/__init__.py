"""The small API server: a Kubernetes-compatible subset of the REST API, stored in SQLite.

kubectl and the official clients work against it unchanged; kube-apiserver is the reference and
k3s + kine show how to keep it small. Entry point: `pyapiserver` (apiserver.cli).
"""
