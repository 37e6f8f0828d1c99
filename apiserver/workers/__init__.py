"""Serving on every core (`pyapiserver --workers N`, issue 28).

The parent process owns the storage (the SQLite file, its group commit and revision counter)
and serves it to the workers over a unix socket (owner, remote, protocol), the way several
kube-apiservers share one etcd. Each worker is a whole API server over a watch cache fed by the
owner's ordered event stream, accepting connections from one inherited listening socket
(supervisor). Work that must happen once runs in the first worker only.
"""
