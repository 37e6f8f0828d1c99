"""Decoding of the protobuf bodies the upstream kubelet writes (its contentType is
application/vnd.kubernetes.protobuf by default): the Node it registers, its Lease, the Events it
records, its CSINode and the DeleteOptions of its pod deletes. client-go does not retry a 415 on protobuf with JSON, so without
these the kubelet could not register, renew or report. Schemas as in protobuf_workloads, field
numbers from the kinds' generated.proto. Go writes every string field; those its JSON never
omits (NodeSystemInfo's, an address's, a runtime handler's name) are kept even when empty."""
from __future__ import annotations

from kubeapi.protobuf_workloads import DELETE_OPTIONS, OBJECT_META, Schema, decode_kind

OBJECT_REFERENCE: Schema = {1: ("kind", "str"), 2: ("namespace", "str"), 3: ("name", "str"),
                            4: ("uid", "str"), 5: ("apiVersion", "str"),
                            6: ("resourceVersion", "str"), 7: ("fieldPath", "str")}
NODE_SPEC: Schema = {
    1: ("podCIDR", "str"), 7: ("podCIDRs", "strs"), 3: ("providerID", "str"),
    4: ("unschedulable", "bool"), 2: ("externalID", "str"),
    5: ("taints", [{1: ("key", "str"), 2: ("value", "str"), 3: ("effect", "str"),
                    4: ("timeAdded", "time")}])}
NODE_SYSTEM_INFO: Schema = {
    **{number: (name, "ptr_str") for number, name in enumerate((
        "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
        "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem",
        "architecture"), 1)},
    11: ("swap", {1: ("capacity", "ptr_int")})}
NODE_STATUS: Schema = {
    1: ("capacity", "quantity"), 2: ("allocatable", "quantity"), 3: ("phase", "str"),
    4: ("conditions", [{1: ("type", "str"), 2: ("status", "str"),
                        3: ("lastHeartbeatTime", "time"), 4: ("lastTransitionTime", "time"),
                        5: ("reason", "str"), 6: ("message", "str")}]),
    5: ("addresses", [{1: ("type", "ptr_str"), 2: ("address", "ptr_str")}]),
    6: ("daemonEndpoints", {1: ("kubeletEndpoint", {1: ("Port", "ptr_int")})}),
    7: ("nodeInfo", NODE_SYSTEM_INFO),
    8: ("images", [{1: ("names", "strs"), 2: ("sizeBytes", "int")}]),
    9: ("volumesInUse", "strs"),
    10: ("volumesAttached", [{1: ("name", "str"), 2: ("devicePath", "str")}]),
    12: ("runtimeHandlers", [{1: ("name", "ptr_str"),
                              2: ("features", {1: ("recursiveReadOnlyMounts", "ptr_bool"),
                                               2: ("userNamespaces", "ptr_bool")})}]),
    13: ("features", {1: ("supplementalGroupsPolicy", "ptr_bool")}),
    14: ("declaredFeatures", "strs")}
LEASE_SPEC: Schema = {
    1: ("holderIdentity", "ptr_str"), 2: ("leaseDurationSeconds", "ptr_int"),
    3: ("acquireTime", "microtime"), 4: ("renewTime", "microtime"),
    5: ("leaseTransitions", "ptr_int"), 6: ("strategy", "ptr_str"),
    7: ("preferredHolder", "ptr_str")}
EVENT: Schema = {
    1: ("metadata", OBJECT_META), 2: ("involvedObject", OBJECT_REFERENCE), 3: ("reason", "str"),
    4: ("message", "str"), 5: ("source", {1: ("component", "str"), 2: ("host", "str")}),
    6: ("firstTimestamp", "time"), 7: ("lastTimestamp", "time"), 8: ("count", "int"),
    9: ("type", "str"), 10: ("eventTime", "microtime"),
    11: ("series", {1: ("count", "int"), 2: ("lastObservedTime", "microtime")}),
    12: ("action", "str"), 13: ("related", OBJECT_REFERENCE),
    14: ("reportingComponent", "str"), 15: ("reportingInstance", "str")}
CSI_NODE_SPEC: Schema = {1: ("drivers", [{
    1: ("name", "ptr_str"), 2: ("nodeID", "ptr_str"), 3: ("topologyKeys", "strs"),
    4: ("allocatable", {1: ("count", "ptr_int")})}])}

KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Node"): {1: ("metadata", OBJECT_META), 2: ("spec", NODE_SPEC),
                     3: ("status", NODE_STATUS)},
    ("coordination.k8s.io/v1", "Lease"): {1: ("metadata", OBJECT_META),
                                          2: ("spec", LEASE_SPEC)},
    ("v1", "Event"): EVENT,
    ("storage.k8s.io/v1", "CSINode"): {1: ("metadata", OBJECT_META), 2: ("spec", CSI_NODE_SPEC)},
    # The body of its pod deletes (grace period 0, the pod's uid as precondition).
    ("v1", "DeleteOptions"): DELETE_OPTIONS,
    ("meta.k8s.io/v1", "DeleteOptions"): DELETE_OPTIONS,
}


def decode(body: bytes) -> dict | None:
    """The object as a JSON-style dict, or None when its kind is not one of these."""
    return decode_kind(body, KINDS)
