"""Cluster DNS (`pykube-dns`, DESIGN.md's `dns/` row): Services and pods under the cluster
domain, every other name forwarded upstream, answered as CoreDNS's kubernetes plugin does with
kubeadm's Corefile (`pods insecure`, `fallthrough in-addr.arpa ip6.arpa`, `forward . resolv.conf`,
`cache`), except that the TTL is the plugin's default of 5 s rather than kubeadm's `ttl 30`:
our watch delivers changes within a second, and 5 s lets clients see them as soon.

The package is `clusterdns`, not `dns`: `dns` is dnspython's top-level package, which this one
is built on.

    request  a name under the domain -> what it asks (service, namespace, port, endpoint)
    records  Services/EndpointSlices/Namespaces (API JSON) -> entries, as findServices/findPods
    zone     entries -> authoritative answers: NXDOMAIN vs NODATA, SOA, SRV weights, PTR
    source   the informers (list + watch) the zone reads at query time
    cache    the forwarder's TTL-honouring answer cache
    forward  upstream resolvers over UDP (TCP after truncation), with failover
    handler  one query -> one response (zone or forwarder)
    memo     rendered responses reused for a second while the cluster is unchanged
    server   UDP and TCP sockets, threads
    registration  this node's EndpointSlice of the kube-dns Service
    cli      pykube-dns's flags

How it runs in a cluster: a node daemon, one per node (a systemd service beside the kubelet and
pykube-proxy), behind the `kube-dns` Service's ClusterIP, not a Deployment. Why: it is Python on
the node's own venv, and the pod images of this project (busybox root filesystems) have no
Python to run it; a node answers its own pods without crossing the pod network, so DNS keeps
working on a node whose cross-node routes are broken; and it is where NodeLocal DNSCache puts
Kubernetes' DNS too. The `kube-dns` Service in kube-system is selectorless, its ClusterIP is the
kubelet's `--cluster-dns`, and it has `internalTrafficPolicy: Local`; each node's daemon
registers its node's address in an EndpointSlice of that Service (`--advertise-address`), so
the service proxy sends every pod's DNS to its own node's daemon.
"""
