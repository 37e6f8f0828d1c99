"""Images built from busybox-static, image stores in temporary roots, and real registries."""
from __future__ import annotations

import os
import subprocess

import pytest

from testlib import imagebuild as ib
from overlay import snapshots
from overlay.store import Store
from testlib.registry import (ISSUER, PASSWORD, SERVICE, USER, Registry, TokenServer,
                              self_signed_cert)
from overlay_testlib import REPO


@pytest.fixture(scope="session")
def bb_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("bbroot") / "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), path], check=True)
    return path


@pytest.fixture(scope="session")
def bb_image(bb_rootfs: str) -> ib.Image:
    tars = ib.busybox_layers(bb_rootfs)
    return ib.Image(tars, ib.image_config(tars))


@pytest.fixture(scope="session")
def fake_arch_image() -> ib.Image:
    """A second architecture for the multi-arch index: one tiny layer."""
    tars = [ib.LayerTar().file("ARCH", b"s390x\n").bytes()]
    return ib.Image(tars, ib.image_config(tars, arch="s390x"), gzip_layers=())


@pytest.fixture(scope="session")
def layouts(tmp_path_factory, bb_image, fake_arch_image) -> dict[str, str]:
    """OCI layouts: "single" (ref name "latest"), "multi" (an index: s390x + amd64, ref "multi")."""
    base = tmp_path_factory.mktemp("layouts")
    single = str(base / "single")
    ib.write_oci_layout(single, [bb_image.descriptor(
        annotations={"org.opencontainers.image.ref.name": "latest"})], [bb_image])
    multi = str(base / "multi")
    index, descriptor = ib.multi_arch_index(bb_image, fake_arch_image)
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": "multi"}
    ib.write_oci_layout(multi, [descriptor], [bb_image, fake_arch_image],
                        extra_blobs={descriptor["digest"]: index})
    return {"single": single, "multi": multi}


class Stores:
    """Image stores in temporary roots; their snapshots are unmounted at the end."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.made: list[Store] = []

    def new(self, name: str = "store") -> Store:
        store = Store(os.path.join(self.base, name))
        self.made.append(store)
        return store

    def cleanup(self) -> None:
        for store in self.made:
            for key in snapshots.list_keys(store):
                snapshots.remove(store, key)


@pytest.fixture
def stores(tmp_path) -> Stores:
    s = Stores(str(tmp_path))
    yield s
    s.cleanup()


@pytest.fixture
def store(stores: Stores) -> Store:
    return stores.new()


@pytest.fixture(scope="session")
def registry(tmp_path_factory, layouts) -> Registry:
    """An anonymous registry holding busybox:latest (OCI), busybox:v2s2 (Docker schema 2) and
    multi:latest (an index of amd64 and s390x)."""
    reg = Registry(str(tmp_path_factory.mktemp("registry")))
    try:
        reg.push(layouts["single"], "latest", "busybox:latest")
        reg.push(layouts["single"], "latest", "busybox:v2s2", "--format", "v2s2")
        reg.push(layouts["multi"], "multi", "multi:latest", "--all")
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory, layouts):
    """A registry that wants Bearer tokens from our token server, which wants a login."""
    workdir = str(tmp_path_factory.mktemp("token-registry"))
    tokens = TokenServer(workdir)
    reg = None
    try:
        reg = Registry(workdir, {"token": {
            "realm": f"http://127.0.0.1:{tokens.port}/token", "service": SERVICE,
            "issuer": ISSUER, "rootcertbundle": tokens.cert}})
        reg.push(layouts["single"], "latest", "private/busybox:latest",
                 creds=f"{USER}:{PASSWORD}")
        yield reg, tokens
    finally:
        if reg is not None:
            reg.close()
        tokens.close()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory, layouts) -> Registry:
    """A registry with htpasswd (Basic) auth."""
    workdir = str(tmp_path_factory.mktemp("basic-registry"))
    htpasswd = os.path.join(workdir, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", htpasswd, USER, PASSWORD], check=True,
                   capture_output=True)
    reg = Registry(workdir, {"htpasswd": {"realm": "pycontainer-test", "path": htpasswd}})
    try:
        reg.push(layouts["single"], "latest", "basic/busybox:latest", creds=f"{USER}:{PASSWORD}")
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory, layouts) -> Registry:
    """An anonymous registry on HTTPS only, with a self-signed certificate."""
    workdir = str(tmp_path_factory.mktemp("tls-registry"))
    reg = Registry(workdir, tls=self_signed_cert(workdir))
    try:
        reg.push(layouts["single"], "latest", "tls/busybox:latest")
        yield reg
    finally:
        reg.close()
