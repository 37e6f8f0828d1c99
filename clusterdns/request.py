"""What a name under the cluster domain asks for, split as CoreDNS's kubernetes plugin splits it:
[endpoint.]service.namespace.(svc|pod) or _port._proto.service.namespace.svc, read from the
right; anything longer, or neither svc nor pod, is an invalid name (NXDOMAIN)."""
from __future__ import annotations

from dataclasses import dataclass

SVC = "svc"
POD = "pod"


class InvalidName(ValueError):
    """The name cannot exist in the zone."""


@dataclass(frozen=True)
class RecordRequest:
    kind: str = ""        # SVC, POD, or "" for the zone's apex and the bare svc/pod labels
    namespace: str = ""
    service: str = ""     # a Service's name, or a pod's dashed IP
    endpoint: str = ""    # an endpoint's hostname
    port: str = ""        # a port's name, without its underscore
    protocol: str = ""


def parse(labels: list[str]) -> RecordRequest:
    """`labels`: the lower-cased labels below the cluster domain, leftmost first."""
    if not labels or labels in ([SVC], [POD]):
        return RecordRequest()
    segs = list(labels)
    kind = segs.pop()
    if kind not in (SVC, POD):
        raise InvalidName(kind)
    namespace = segs.pop() if segs else ""
    service = segs.pop() if segs else ""
    if len(segs) == 1:
        return RecordRequest(kind, namespace, service, endpoint=segs[0])
    if len(segs) == 2:
        return RecordRequest(kind, namespace, service, port=_strip(segs[0]),
                             protocol=_strip(segs[1]))
    if segs:
        raise InvalidName(".".join(labels))
    return RecordRequest(kind, namespace, service)


def _strip(label: str) -> str:
    return label[1:] if label.startswith("_") else label
