"""Pure logic: references, platform selection, chain IDs, the image config conversion, docker
config.json credentials, blob writes."""
from __future__ import annotations

import json
import os
import threading

import pytest

from overlay import blobs, docker_auth, image_config, layers, manifest as m, reference
from overlay.errors import ImageError
from overlay.store import Store


@pytest.mark.parametrize("text,expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/x/y:z", "docker.io/x/y:z"),
    ("registry:5000/app@sha256:" + "a" * 64, "registry:5000/app@sha256:" + "a" * 64),
    ("localhost/a/b", "localhost/a/b:latest"),
    ("quay.io/org/app:v1.2_3", "quay.io/org/app:v1.2_3"),
])
def test_references_normalize_like_docker(text, expected):
    assert str(reference.parse(text)) == expected


@pytest.mark.parametrize("text,problem", [
    ("", "empty"), ("Busybox", "lowercase"), ("a/b:c:d", "lowercase"),
    ("busybox@sha256:abc", "not a sha256 digest"), ("x@md5:" + "a" * 32, "unsupported algorithm"),
    ("x:" + "t" * 200, "tag"),
])
def test_bad_references_are_refused_with_the_reason(text, problem):
    with pytest.raises(ImageError, match=problem):
        reference.parse(text)


def test_docker_hub_is_served_by_registry_1():
    assert reference.parse("busybox").api_host == "registry-1.docker.io"
    assert reference.parse("127.0.0.1:5000/x").api_host == "127.0.0.1:5000"


def _entry(arch: str | None, digest_char: str) -> m.Descriptor:
    platform = {"os": "linux", "architecture": arch} if arch else None
    return m.Descriptor(m.OCI_MANIFEST, "sha256:" + digest_char * 64, 1, platform)


def test_platform_selection_takes_the_hosts_architecture():
    entries = [_entry("arm64", "a"), _entry("amd64", "b"), _entry("s390x", "c")]
    assert m.select_platform(entries, "x", ("linux", "amd64")).digest.endswith("b")
    assert m.select_platform(entries, "x", ("linux", "s390x")).digest.endswith("c")
    with pytest.raises(ImageError, match=r"no manifest for linux/riscv64 \(offered: "
                                         r"linux/amd64, linux/arm64, linux/s390x\)"):
        m.select_platform(entries, "x", ("linux", "riscv64"))


def test_schema1_manifests_are_refused_clearly():
    data = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(ImageError, match="schema 1 manifests are not supported"):
        m.media_type_of(data, None, "manifest")


def test_chain_ids_follow_the_image_spec():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    chain = layers.chain_ids([a, b])
    assert chain[0] == a
    import hashlib
    assert chain[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


PASSWD = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:app,other\napp:x:1001:\nwheel:x:10:app\n"


def test_conversion_of_the_image_config():
    config = {"os": "linux", "architecture": "amd64", "created": "2023-01-01T00:00:00Z",
              "config": {"Entrypoint": ["/bin/tini", "--"], "Cmd": ["serve"],
                         "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv", "User": "app",
                         "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "StopSignal": "SIGINT",
                         "Labels": {"org.opencontainers.image.os": "from-label"}}}
    p = image_config.process(config, [], ["A=2", "B=3"], PASSWD, GROUP)
    assert p.args == ["/bin/tini", "--", "serve"]
    assert p.env == ["PATH=/bin", "A=2", "B=3"]
    assert (p.cwd, p.uid, p.gid, p.additional_gids) == ("/srv", 1000, 1001, [10, 50])
    assert image_config.process(config, ["sh", "-c", "x"], [], PASSWD, GROUP).args == \
        ["/bin/tini", "--", "sh", "-c", "x"]
    notes = image_config.annotations(config)
    assert notes["org.opencontainers.image.exposedPorts"] == "443/tcp,80/tcp"
    assert notes["org.opencontainers.image.stopSignal"] == "SIGINT"
    assert notes["org.opencontainers.image.os"] == "from-label"  # Labels win
    assert notes["org.opencontainers.image.created"] == "2023-01-01T00:00:00Z"


@pytest.mark.parametrize("user,ids", [
    ("1000", (1000, 1001, [])), ("1000:7", (1000, 7, [])), ("app:staff", (1000, 50, [])),
    ("4242", (4242, 0, [])), ("", (0, 0, [])),
])
def test_conversion_of_users(user, ids):
    p = image_config.process({"config": {"Cmd": ["x"], "User": user}}, [], [], PASSWD, GROUP)
    assert (p.uid, p.gid, p.additional_gids) == ids


def test_unknown_user_or_group_and_missing_command_are_errors():
    with pytest.raises(ImageError, match="no user 'nobody'"):
        image_config.process({"config": {"Cmd": ["x"], "User": "nobody"}}, [], [], PASSWD, GROUP)
    with pytest.raises(ImageError, match="no group 'nogroup'"):
        image_config.process({"config": {"Cmd": ["x"], "User": "app:nogroup"}}, [], [], PASSWD,
                             GROUP)
    with pytest.raises(ImageError, match="no Entrypoint or Cmd"):
        image_config.process({"config": {}}, [], [], PASSWD, GROUP)
    with pytest.raises(ImageError, match="must be NAME=VALUE"):
        image_config.process({"config": {"Cmd": ["x"]}}, [], ["NOVALUE"], PASSWD, GROUP)


def test_docker_config_credentials(tmp_path):
    path = str(tmp_path / "config.json")
    with open(path, "w") as f:
        json.dump({"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"},
                             "reg.example:5000": {"username": "me", "password": "pw"}}}, f)
    assert docker_auth.lookup("docker.io", path) == ("u", "p")
    assert docker_auth.lookup("reg.example:5000", path) == ("me", "pw")
    assert docker_auth.lookup("other.example", path) is None
    with pytest.raises(ImageError, match="no such file"):
        docker_auth.lookup("docker.io", str(tmp_path / "missing.json"))


def test_a_blob_is_verified_before_it_is_stored(tmp_path):
    store = Store(str(tmp_path / "s"))
    good = blobs.put_bytes(store, b"hello")
    assert store.read_blob(good) == b"hello"
    with pytest.raises(ImageError, match="content has digest .*: refused"):
        blobs.put_bytes(store, b"tampered", "sha256:" + "0" * 64)
    assert not store.has_blob("sha256:" + "0" * 64)
    assert os.listdir(store.path("ingest")) == []
    assert os.listdir(store.path("blobs", "sha256")) == [good[7:]]


def test_concurrent_writers_of_one_blob_store_one_copy(tmp_path):
    store = Store(str(tmp_path / "s"))
    data = os.urandom(1 << 20)
    results = []
    threads = [threading.Thread(target=lambda: results.append(blobs.put_bytes(store, data)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "concurrent blob writers: not done in 60 s"
    assert len(set(results)) == 1
    assert os.listdir(store.path("blobs", "sha256")) == [results[0][7:]]
    assert os.listdir(store.path("ingest")) == []


def test_store_root_must_not_break_overlay_options(tmp_path):
    with pytest.raises(ImageError, match="must not contain"):
        Store(str(tmp_path / "a,b"))


def test_users_are_read_from_the_image_not_the_host(tmp_path):
    """An image's /etc/passwd symlink to an absolute path points into the image."""
    from runtime.image_bundle import read_in_root

    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "real").write_text("app:x:7:7::/:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to("/real")
    (root / "etc" / "group").symlink_to("/etc/hostname")  # exists on the host, not in the image
    assert read_in_root(str(root), "/etc/passwd") == "app:x:7:7::/:/bin/sh\n"
    assert read_in_root(str(root), "/etc/group") is None


def test_run_image_path_stays_lean():
    """`run --image` starts containers too: no HTTP, TLS, tar/gzip or dataclasses on its way."""
    import subprocess
    import sys

    code = ("import sys; import runtime.cli.commands.run, runtime.image_bundle; "
            "heavy = {'http', 'urllib', 'ssl', 'tarfile', 'gzip', 'dataclasses', 'typing', "
            "'secrets', 'shutil', 'click', 'pathlib', 'subprocess'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
