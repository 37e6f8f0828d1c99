"""Pulls from a real distribution registry (Debian's docker-registry) on 127.0.0.1.

skopeo compresses the uncompressed layers on push, so the registry's manifests differ from the
local layout's: images are compared by their diff IDs (the uncompressed layers) and config."""
from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from overlay import images, layers, pull, snapshots
from overlay.errors import ImageError
from testlib import imagebuild as ib
from testlib.registry import FaultyProxy
from overlay_testlib import PYCONTAINER, cli, write_auth_file

pytestmark = [pytest.mark.root, pytest.mark.slow]


def diff_ids(image: ib.Image) -> list[str]:
    return [ib.digest(t) for t in image.layer_tars]


def architecture(store, image) -> str:
    return json.loads(store.read_blob(image.config))["architecture"]


@pytest.fixture
def proxy(registry):
    p = FaultyProxy(registry.host)
    yield p
    p.close()


def test_pull_oci_image(store, registry, bb_image):
    image = pull.pull(store, f"{registry.host}/busybox", insecure=True)
    assert image.name == f"{registry.host}/busybox:latest"
    assert image.diff_ids == diff_ids(bb_image)
    assert images.load(store, image.name) == image
    root = snapshots.create(store, "c", layers.chain_ids(image.diff_ids))
    with open(os.path.join(root, "etc", "motd")) as f:
        assert f.read() == "motd 3\n"


def test_pull_docker_schema2_image(store, registry, bb_image):
    image = pull.pull(store, f"{registry.host}/busybox:v2s2", insecure=True)
    manifest = json.loads(store.read_blob(image.digest))
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert image.diff_ids == diff_ids(bb_image)


def test_pull_picks_the_platform_from_a_multi_arch_index(store, registry, bb_image,
                                                          fake_arch_image):
    image = pull.pull(store, f"{registry.host}/multi", insecure=True)
    assert image.diff_ids == diff_ids(bb_image) and architecture(store, image) == "amd64"
    other = pull.pull(store, f"{registry.host}/multi", insecure=True, platform=("linux", "s390x"))
    assert other.diff_ids == diff_ids(fake_arch_image) and architecture(store, other) == "s390x"
    with pytest.raises(ImageError, match="no manifest for linux/arm64 .offered: linux/amd64, "
                                         "linux/s390x"):
        pull.pull(store, f"{registry.host}/multi", insecure=True, platform=("linux", "arm64"))


def test_plain_http_only_for_a_registry_named_insecure(store, registry):
    with pytest.raises(ImageError, match="if it serves plain HTTP, pull with --insecure"):
        pull.pull(store, f"{registry.host}/busybox")
    with pytest.raises(ImageError, match="not found"):
        pull.pull(store, f"{registry.host}/nosuch", insecure=True)
    assert images.list_all(store) == []


def test_token_auth_with_credentials_from_docker_config(store, token_registry, tmp_path):
    reg, tokens = token_registry
    ref = f"{reg.host}/private/busybox"
    with pytest.raises(ImageError, match="refused an anonymous request"):
        pull.pull(store, ref, insecure=True, auth_file=write_auth_file(
            str(tmp_path / "none.json"), []))
    with pytest.raises(ImageError, match="refused the credentials"):
        pull.pull(store, ref, insecure=True, auth_file=write_auth_file(
            str(tmp_path / "wrong.json"), [reg.host], password="wrong"))
    tokens.requests.clear()
    image = pull.pull(store, ref, insecure=True,
                      auth_file=write_auth_file(str(tmp_path / "ok.json"), [reg.host]))
    assert image.name == f"{reg.host}/private/busybox:latest"
    assert tokens.requests == [{"query": {"scope": ["repository:private/busybox:pull"],
                                          "service": ["pycontainer-test"]},
                                "authorized": True}]


def test_basic_auth_from_docker_config(store, basic_registry, tmp_path, monkeypatch):
    ref = f"{basic_registry.host}/basic/busybox"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(ImageError, match="asks for a login and no credentials"):
        pull.pull(store, ref, insecure=True)
    write_auth_file(str(tmp_path / "config.json"), [basic_registry.host])
    assert pull.pull(store, ref, insecure=True).name == f"{basic_registry.host}/basic/busybox:latest"


def registry_layer(store, proxy, index: int) -> str:
    """The digest of a layer as the registry stores it (manifest read without downloading)."""
    from overlay.registry import RegistryClient

    data, _, _ = RegistryClient(proxy.host, insecure=True).manifest("busybox", "latest")
    proxy.requests.clear()
    return json.loads(data)["layers"][index]["digest"]


def test_a_broken_download_is_resumed(store, proxy, bb_image):
    layer = registry_layer(store, proxy, 0)  # the busybox layer, 1 MB compressed
    proxy.cut.add(layer)
    image = pull.pull(store, f"{proxy.host}/busybox", insecure=True)
    assert image.diff_ids == diff_ids(bb_image)
    ranges = [r for path, r in proxy.requests if path.endswith(layer)]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert os.listdir(store.path("ingest")) == []


def test_a_wrong_partial_file_is_restarted(store, proxy, bb_image):
    layer = registry_layer(store, proxy, 0)
    with open(store.path("ingest", layer[7:] + ".partial"), "wb") as f:
        f.write(b"garbage" * 1000)
    assert pull.pull(store, f"{proxy.host}/busybox", insecure=True).diff_ids == diff_ids(bb_image)
    ranges = [r for path, r in proxy.requests if path.endswith(layer)]
    assert ranges == ["bytes=7000-", None]


def test_a_corrupt_blob_from_the_registry_is_refused(store, proxy, bb_image):
    layer = registry_layer(store, proxy, 1)
    proxy.corrupt.add(layer)
    with pytest.raises(ImageError, match=f"blob {layer}: content has digest .*: refused"):
        pull.pull(store, f"{proxy.host}/busybox", insecure=True)
    assert not store.has_blob(layer)
    assert images.list_all(store) == [] and os.listdir(store.path("ingest")) == []


def test_concurrent_pulls_of_one_image_store_one_copy(store, registry, bb_image):
    ref = f"{registry.host}/busybox"
    procs = [subprocess.Popen([PYCONTAINER, "--image-root", store.root, "image", "pull",
                               "--insecure", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert len({out for out, _ in outputs}) == 1 and outputs[0][0].startswith(f"{ref}:latest sha256:".encode())
    assert len(os.listdir(store.path("blobs", "sha256"))) == 2 + len(bb_image.layer_tars)
    assert len(os.listdir(store.path("l"))) == len(bb_image.layer_tars)
    assert len(os.listdir(store.path("layers"))) == len(bb_image.layer_tars)


def test_progress_per_layer_on_a_terminal_only(store, stores, registry, bb_image):
    out = cli(store.root, "image", "pull", "--insecure", f"{registry.host}/busybox")
    assert out.returncode == 0 and out.stderr == ""
    other = stores.new("tty")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([PYCONTAINER, "--image-root", other.root, "image", "pull",
                               "--insecure", f"{registry.host}/busybox"], stderr=slave,
                              stdout=subprocess.PIPE, timeout=60)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    text = seen.decode()
    for layer in images.list_all(other)[0].layers:
        short = layer.digest[7:19]
        assert f"{short}: downloaded" in text and f"{short}: unpacked" in text
