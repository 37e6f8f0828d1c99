"""What every package that speaks Kubernetes shares: resource quantities, pod defaulting and
validation, Status errors and field causes, the protobuf wire format, the API's time formats,
kubeconfig files and the REST client. It imports nothing from the API server or the kubelet,
so both (and the controllers to come) stand on it, as on apimachinery and client-go."""
