"""A client of any CRI v1 endpoint (pycontainer-cri, containerd, CRI-O): the RuntimeService and
ImageService of cri.api spoken over gRPC on a unix socket, as the kubelet's remote runtime
(k8s.io/cri-client) does. connection.py dials and maps gRPC statuses to CRIError/NotFound,
to_proto.py and from_proto.py map the dataclasses, runtime.py and images.py are the services,
events.py tells container exits (GetContainerEvents, or a relist where the runtime has none)."""
