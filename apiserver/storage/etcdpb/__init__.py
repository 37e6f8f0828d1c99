"""The etcd v3 API: etcd's own rpc.proto, kv.proto and auth.proto, stripped of annotations, and
the Python modules grpcio-tools generates from them (README.md says which release and how)."""
