"""Image references as users write them (`busybox`, `busybox:1.36`,
`registry:5000/app@sha256:...`), normalized the way docker does: docker.io is the default
registry, library/ the default namespace there, latest the default tag."""
from __future__ import annotations

import re

from overlay import digest as digest_mod
from overlay.errors import ImageError

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_HOST = re.compile(r"(?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")


class Reference:
    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry: str, repository: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def api_host(self) -> str:
        """host[:port] that serves the registry API."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_ref(self) -> str:
        """What /v2/<name>/manifests/<ref> asks for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"


def parse(text: str) -> Reference:
    def bad(problem: str) -> ImageError:
        return ImageError(f"image reference {text!r}: {problem}")

    if not text or text != text.strip():
        raise bad("empty or surrounded by spaces")
    rest, _, digest = text.partition("@")
    if digest:
        try:
            digest_mod.check(digest)
        except ImageError as e:
            raise bad(str(e)) from None
    registry = DOCKER_HUB
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST.fullmatch(first):
            raise bad(f"registry {first!r} is not a host[:port]")
        registry, rest = first, remainder
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    name, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if colon and "/" in tag:  # the colon belonged to a path component, not a tag
        name, tag = rest, ""
    if colon and not _TAG.fullmatch(tag):
        raise bad(f"tag {tag!r}: letters, digits, _ . - only, at most 128")
    components = name.split("/")
    for component in components:
        if not _COMPONENT.fullmatch(component):
            raise bad(f"repository component {component!r}: lowercase letters, digits and "
                      "separators (. _ __ -) only")
    if registry == DOCKER_HUB and len(components) == 1:
        name = "library/" + name
    if len(registry) + 1 + len(name) > 255:
        raise bad("name longer than 255 characters")
    if not tag and not digest:
        tag = "latest"
    return Reference(registry, name, tag or None, digest or None)
