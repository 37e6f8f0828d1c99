"""The API resources this server serves: names, kinds, scopes, verbs, short names, categories."""
from __future__ import annotations

from .registry.configdata import ConfigMapStrategy, SecretStrategy
from .registry.disruption import PodDisruptionBudgetStrategy
from .registry.endpoints import EndpointsStrategy
from .registry.endpointslices import EndpointSliceStrategy
from .registry.events import EventStrategy
from .registry.leases import LeaseStrategy
from .registry.namespaces import NamespaceStrategy
from .registry.nodes import NodeStrategy
from .registry.pods import PodStrategy
from .registry.resource_type import ResourceType
from .registry.runtimeclasses import RuntimeClassStrategy
from .registry.serviceaccounts import ServiceAccountStrategy
from .registry.services import ServiceStrategy
from .registry.volumes.persistentvolumes import (PersistentVolumeClaimStrategy,
                                                 PersistentVolumeStrategy)
from .registry.volumes.storage_group import (CSIDriverStrategy, CSINodeStrategy,
                                             StorageClassStrategy)
from .registry.workloads.apps import (ControllerRevisionStrategy, DaemonSetStrategy,
                                      DeploymentStrategy, ReplicaSetStrategy,
                                      StatefulSetStrategy)
from .registry.workloads.batch import CronJobStrategy, JobStrategy

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

_STATUS_VERBS = ("get", "patch", "update")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", NamespaceStrategy(),
                 ("ns",), (), {"status": ("get", "patch", "update")}),
    ResourceType("", "v1", "pods", "pod", "Pod", PodStrategy(), ("po",), ("all",),
                 {"status": ("get", "patch", "update"), "binding": ("create",),
                  "log": ("get",), "ephemeralcontainers": ("get", "patch", "update"),
                  "exec": ("create", "get"), "attach": ("create", "get"),
                  "portforward": ("create", "get"), "eviction": ("create",)}),
    ResourceType("", "v1", "nodes", "node", "Node", NodeStrategy(), ("no",), (),
                 {"status": ("get", "patch", "update")}),
    ResourceType("", "v1", "events", "event", "Event", EventStrategy(), ("ev",), ()),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", ConfigMapStrategy(), ("cm",)),
    ResourceType("", "v1", "secrets", "secret", "Secret", SecretStrategy()),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount",
                 ServiceAccountStrategy(), ("sa",), (), {"token": ("create",)}),
    ResourceType("", "v1", "services", "service", "Service", ServiceStrategy(), ("svc",),
                 ("all",), {"status": ("get", "patch", "update")}),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", EndpointsStrategy(), ("ep",),
                 deprecation="v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 "
                 "EndpointSlice"),
    ResourceType("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume",
                 PersistentVolumeStrategy(), ("pv",), (), {"status": _STATUS_VERBS}),
    ResourceType("", "v1", "persistentvolumeclaims", "persistentvolumeclaim",
                 "PersistentVolumeClaim", PersistentVolumeClaimStrategy(), ("pvc",), (),
                 {"status": _STATUS_VERBS}),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", LeaseStrategy()),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice",
                 EndpointSliceStrategy()),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", DeploymentStrategy(),
                 ("deploy",), ("all",), {"status": _STATUS_VERBS, "scale": _STATUS_VERBS}),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", ReplicaSetStrategy(),
                 ("rs",), ("all",), {"status": _STATUS_VERBS, "scale": _STATUS_VERBS}),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", DaemonSetStrategy(),
                 ("ds",), ("all",), {"status": _STATUS_VERBS}),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet",
                 StatefulSetStrategy(), ("sts",), ("all",),
                 {"status": _STATUS_VERBS, "scale": _STATUS_VERBS}),
    ResourceType("apps", "v1", "controllerrevisions", "controllerrevision",
                 "ControllerRevision", ControllerRevisionStrategy()),
    ResourceType("batch", "v1", "jobs", "job", "Job", JobStrategy(), (), ("all",),
                 {"status": _STATUS_VERBS}),
    ResourceType("batch", "v1", "cronjobs", "cronjob", "CronJob", CronJobStrategy(), ("cj",),
                 ("all",), {"status": _STATUS_VERBS}),
    ResourceType("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget",
                 "PodDisruptionBudget", PodDisruptionBudgetStrategy(), ("pdb",), (),
                 {"status": _STATUS_VERBS}),
    ResourceType("storage.k8s.io", "v1", "csinodes", "csinode", "CSINode", CSINodeStrategy()),
    ResourceType("storage.k8s.io", "v1", "csidrivers", "csidriver", "CSIDriver",
                 CSIDriverStrategy()),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass",
                 StorageClassStrategy(), ("sc",)),
    ResourceType("node.k8s.io", "v1", "runtimeclasses", "runtimeclass", "RuntimeClass",
                 RuntimeClassStrategy()),
)
# Subresources served as another group's kind: name -> (group, version, kind), as discovery
# announces them (kubectl drain looks for pods/eviction's policy/v1 Eviction).
SUBRESOURCE_KINDS: dict[str, tuple[str, str, str]] = {
    "scale": ("autoscaling", "v1", "Scale"), "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest")}

# metrics.k8s.io is served by apiserver/metrics, the review groups by apiserver/auth/reviews.py:
# neither from storage.
GROUP_VERSIONS: tuple[tuple[str, str], ...] = (("", "v1"), ("coordination.k8s.io", "v1"),
                                               ("metrics.k8s.io", "v1beta1"),
                                               ("authentication.k8s.io", "v1"),
                                               ("authorization.k8s.io", "v1"),
                                               ("apps", "v1"), ("batch", "v1"),
                                               ("policy", "v1"), ("discovery.k8s.io", "v1"),
                                               ("storage.k8s.io", "v1"), ("node.k8s.io", "v1"))


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def by_kind(kind: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.kind == kind:
            return r
    return None
