"""The container manager (the kubelet's pkg/kubelet/cm with its admission and eviction): QoS
classes and the resources they give (qos), the pod cgroups under kubepods (pod_cgroups), which
pods the node admits (admission, with the sysctl rules of sysctls), and evictions under memory
pressure (eviction)."""
