"""The node as the API sees it (the kubelet's nodestatus setters and node lease): the Node
object with its capacity, allocatable, conditions, addresses and images (node_status), and the
Lease renewed in kube-node-lease (lease)."""
