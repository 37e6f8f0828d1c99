"""The CRI v1 runtime and image services over runtime + shim + overlay + cni: the interface
(api), its implementation on this machine (service: sandboxes, containers, images) and an
in-memory fake of it (fake). Nothing here imports the kubelet."""
