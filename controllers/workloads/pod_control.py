"""Creating and deleting the pods a workload controls, as kube's RealPodControl: each request
answered by an event on the owner, and, when it fails, counted against the owner's expectations
at once (its informer will never see it)."""
from __future__ import annotations

from dataclasses import dataclass

from kubeapi.informer import object_key
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from ..events import EventRecorder
from .expectations import Expectations
from .pod_util import pods_path


@dataclass
class PodControl:
    client: ApiClient
    recorder: EventRecorder
    expectations: Expectations

    def create(self, key: str, owner: dict, pod: dict) -> dict:
        """The pod as created; the caller expected its creation under `key` beforehand. An
        ApiError is raised again after the FailedCreate event."""
        try:
            created = self.client.create(pods_path(owner["metadata"]["namespace"]), pod)
        except ApiError as e:
            self.expectations.creation_observed(key)
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e.message}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulCreate",
                            f"Created pod: {created['metadata']['name']}")
        return created

    def delete(self, key: str, owner: dict, pod: dict) -> None:
        """Deletes the pod if it is still the one with this uid (not a namesake made since);
        the caller expected its deletion under `key` beforehand. ApiError raised."""
        name = pod["metadata"]["name"]
        try:
            self.client.delete(pods_path(owner["metadata"]["namespace"], name),
                               {"preconditions": {"uid": pod["metadata"]["uid"]}})
        except ApiError:
            self.expectations.deletion_observed(key, object_key(pod))
            raise
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    def delete_all(self, key: str, owner: dict, pods: list[dict]) -> None:
        """Expects the pods' deletions and deletes them; one gone or replaced meanwhile is no
        error."""
        if not pods:
            return
        self.expectations.expect_deletions(key, [object_key(p) for p in pods])
        for pod in pods:
            try:
                self.delete(key, owner, pod)
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
