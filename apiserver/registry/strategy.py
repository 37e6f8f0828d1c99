"""The per-resource strategy: defaulting, validation and update rules (kube's RESTStrategy)."""
from __future__ import annotations

from kubeapi import validation


class Strategy:
    """Defaults for a plain namespaced object; resource modules override what differs."""

    kind = ""
    namespaced = True
    # With a status subresource, the main resource ignores status and /status ignores the rest.
    has_status = False
    field_labels = frozenset({"metadata.name", "metadata.namespace"})
    # Only the kinds whose kube strategy sets metadata.generation on create carry one (the
    # workloads, pods, EndpointSlices); the others keep whatever the client sent, as in kube.
    has_generation = False

    def name_errors(self, name: str, field: str) -> list[dict]:
        return validation.dns1123_subdomain(name, field)

    def default(self, obj: dict) -> None:
        """Fills in defaults on create and update, as SetDefaults_* and admission do."""

    def prepare_create(self, obj: dict) -> None:
        """Resets what a client may not set on create."""

    def validate(self, obj: dict) -> list[dict]:
        return []

    def for_subresource(self, subresource: str) -> "Strategy":
        """The rules of an update through this subresource when it has rules of its own (as
        kube's podEphemeralContainersStrategy); the resource's own otherwise."""
        return self

    def prepare_update(self, new: dict, old: dict) -> dict:
        """What an update keeps of the object sent, before the store's common rules."""
        return new

    def generation_changed(self, new: dict, old: dict) -> bool:
        """Whether an update starts a new generation (with has_generation): a new spec."""
        return new.get("spec") != old.get("spec")

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return self.validate(new)

    def fields(self, obj: dict) -> dict[str, str]:
        """The values that fieldSelector can match."""
        meta = obj.get("metadata", {})
        out = {"metadata.name": meta.get("name", "")}
        if self.namespaced:
            out["metadata.namespace"] = meta.get("namespace", "")
        return out
