"""The kubelet's pod: a read-only typed view of one API pod (the Kubernetes JSON object, as the
API server sends it), made once where the pod enters the kubelet (sources/) and passed down as
such. Its properties name what the kubelet asks of a pod; `obj` is the JSON itself, for where
the API's shape is what is needed (the spec a mirror pod copies)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from kubeapi.pod_defaulting import qos_class

# The annotations the kubelet's config sources put on static pods, and the one that marks their
# mirror pods in the API server (its value is the static pod's config hash).
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_MIRROR = "kubernetes.io/config.mirror"

TERMINAL_PHASES = ("Succeeded", "Failed")
DEFAULT_GRACE_PERIOD = 30


@dataclass(frozen=True)
class Pod:
    """Nobody changes `obj` once its source handed the pod over: a newer one is a new Pod."""
    obj: dict

    # -- metadata -------------------------------------------------------------------------------

    @property
    def _meta(self) -> dict:
        return self.obj["metadata"]

    @property
    def uid(self) -> str:
        return self._meta["uid"]

    @property
    def name(self) -> str:
        return self._meta["name"]

    @property
    def namespace(self) -> str:
        return self._meta.get("namespace") or "default"

    @property
    def full_name(self) -> str:
        """name_namespace(uid), as the kubelet's format.Pod prints a pod."""
        return f"{self.name}_{self.namespace}({self.uid})"

    @property
    def labels(self) -> dict[str, str]:
        return self._meta.get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self._meta.get("annotations") or {}

    @property
    def resource_version(self) -> str:
        return self._meta.get("resourceVersion", "")

    @property
    def is_static(self) -> bool:
        """From a manifest file, not from the API server."""
        return self.annotations.get(CONFIG_SOURCE, "api") != "api"

    @property
    def is_mirror(self) -> bool:
        """The API server's copy of a static pod, which the kubelet never runs."""
        return CONFIG_MIRROR in self.annotations

    @property
    def config_hash(self) -> str:
        """What a static pod's mirror carries in its config.mirror annotation."""
        return self.annotations.get(CONFIG_HASH, self.uid)

    @property
    def mirror_hash(self) -> str:
        """The config hash of the static pod a mirror pod stands for ("" if not a mirror)."""
        return self.annotations.get(CONFIG_MIRROR, "")

    @property
    def is_deleted(self) -> bool:
        return bool(self._meta.get("deletionTimestamp"))

    @property
    def deletion_grace_period(self) -> int:
        """The seconds a deletion grants: deletionGracePeriodSeconds, else the spec's."""
        if self._meta.get("deletionGracePeriodSeconds") is not None:
            return int(self._meta["deletionGracePeriodSeconds"])
        return self.termination_grace_period

    @property
    def desired(self) -> tuple:
        """What a pod asks of the kubelet: all but its status and bookkeeping (a change to these
        is no reason to sync)."""
        meta = {k: v for k, v in self._meta.items()
                if k not in ("resourceVersion", "managedFields", "generation")}
        return meta, self.obj.get("spec")

    # -- spec -----------------------------------------------------------------------------------

    @property
    def _spec(self) -> dict:
        return self.obj.get("spec") or {}

    @property
    def node_name(self) -> str:
        return self._spec.get("nodeName", "")

    @property
    def containers(self) -> list[dict]:
        return self._spec.get("containers") or []

    @property
    def init_containers(self) -> list[dict]:
        return self._spec.get("initContainers") or []

    @property
    def ephemeral_containers(self) -> list[dict]:
        return self._spec.get("ephemeralContainers") or []

    @property
    def all_containers(self) -> list[dict]:
        """Init, app and ephemeral containers, in that order."""
        return self.init_containers + self.containers + self.ephemeral_containers

    @property
    def volumes(self) -> list[dict]:
        return self._spec.get("volumes") or []

    @property
    def restart_policy(self) -> str:
        return self._spec.get("restartPolicy") or "Always"

    @property
    def host_network(self) -> bool:
        return bool(self._spec.get("hostNetwork"))

    @property
    def host_pid(self) -> bool:
        return bool(self._spec.get("hostPID"))

    @property
    def host_ipc(self) -> bool:
        return bool(self._spec.get("hostIPC"))

    @property
    def host_users(self) -> bool:
        """False asks for a user namespace of the pod's own."""
        return self._spec.get("hostUsers") is not False

    @property
    def security_context(self) -> dict:
        """The pod's securityContext (each container's may override parts)."""
        return self._spec.get("securityContext") or {}

    @property
    def qos_class(self) -> str:
        """Guaranteed, Burstable or BestEffort, from its containers' requests and limits."""
        return qos_class(self._spec)

    @property
    def termination_grace_period(self) -> int:
        seconds = self._spec.get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE_PERIOD if seconds is None else int(seconds)

    @property
    def active_deadline_seconds(self) -> int | None:
        return self._spec.get("activeDeadlineSeconds")

    @property
    def priority(self) -> int:
        return self._spec.get("priority") or 0

    @property
    def service_account_name(self) -> str:
        return self._spec.get("serviceAccountName") or ""

    @property
    def enable_service_links(self) -> bool:
        return self._spec.get("enableServiceLinks") is not False

    @property
    def hostname(self) -> str:
        return self._spec.get("hostname") or ""

    @property
    def subdomain(self) -> str:
        return self._spec.get("subdomain") or ""

    @property
    def host_aliases(self) -> list[dict]:
        return self._spec.get("hostAliases") or []

    @property
    def dns_policy(self) -> str:
        return self._spec.get("dnsPolicy") or "ClusterFirst"

    @property
    def dns_config(self) -> dict:
        return self._spec.get("dnsConfig") or {}

    # -- status ---------------------------------------------------------------------------------

    @property
    def status(self) -> dict:
        """The status the source showed (the API's; the kubelet's own newer one is the status
        manager's)."""
        return self.obj.get("status") or {}

    @property
    def phase(self) -> str:
        return self.status.get("phase", "")

    @property
    def is_terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    # -- on this node ---------------------------------------------------------------------------

    def log_directory(self, pod_logs_dir: str) -> str:
        """<podLogsDir>/<namespace>_<name>_<uid>"""
        return os.path.join(pod_logs_dir, f"{self.namespace}_{self.name}_{self.uid}")
