"""`pycontainer image ...` and `pycontainer run --image` as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from testlib import imagebuild as ib
from overlay import snapshots
from overlay.store import Store
from overlay_testlib import cli

pytestmark = pytest.mark.root


class User:
    """`pycontainer` with a private state root and image root; cleans up what it made."""

    def __init__(self, base: str) -> None:
        self.state = os.path.join(base, "state")
        self.images = os.path.join(base, "images")
        self.ids: list[str] = []

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return cli(self.images, "--root", self.state, *args, **kwargs)

    def new_id(self) -> str:
        self.ids.append(f"i{uuid.uuid4().hex[:10]}")
        return self.ids[-1]

    def leftovers(self) -> list[str]:
        found = []
        snaps = os.path.join(self.images, "snapshots")
        if os.path.isdir(snaps):
            found += [f"snapshot {s}" for s in os.listdir(snaps)]
        if os.path.isdir(self.state):
            found += [f"state {s}" for s in os.listdir(self.state)]
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f if self.images in line]
        return found

    def cleanup(self) -> None:
        """Every container of the state root, then every snapshot of the store: a `run --rm`
        that failed half-way may have left either, with its overlay mounted."""
        made = os.listdir(self.state) if os.path.isdir(self.state) else []
        for container_id in dict.fromkeys([*self.ids, *made]):
            self("delete", "--force", container_id)
        store = Store(self.images)
        for key in snapshots.list_keys(store):
            snapshots.remove(store, key)


@pytest.fixture
def user(tmp_path, bb_image):
    u = User(str(tmp_path))
    archive = str(tmp_path / "busybox.tar")
    ib.write_docker_archive(archive, bb_image, ["busybox:latest"])
    assert u("image", "import", archive).returncode == 0
    yield u
    u.cleanup()


def test_image_verbs(user, tmp_path, layouts):
    out = user("image", "import", layouts["single"], "--name", "localhost:5000/bb:v1")
    assert out.returncode == 0 and out.stdout.startswith("localhost:5000/bb:v1 sha256:")
    out = user("image", "ls")
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DIGEST", "SIZE", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["docker.io/library/busybox:latest",
                                                      "localhost:5000/bb:v1"]
    listed = json.loads(user("image", "ls", "--format", "json").stdout)
    assert listed[0]["name"] == "docker.io/library/busybox:latest" and listed[0]["size"] > 2_000_000
    info = json.loads(user("image", "inspect", "busybox").stdout)
    assert info["image_config"]["config"]["WorkingDir"] == "/data"
    assert all(layer["unpacked"] for layer in info["layers"])
    out = user("image", "rm", "busybox", "localhost:5000/bb:v1")
    assert out.returncode == 0 and user("image", "ls", "-q").stdout == ""
    assert os.listdir(os.path.join(user.images, "blobs", "sha256")) == []
    assert os.listdir(os.path.join(user.images, "l")) == []


@pytest.mark.parametrize("args,message", [
    (("image", "rm", "nosuch"), "image nosuch: not in the store"),
    (("image", "inspect", "Bad_Name"), "image reference 'Bad_Name': repository component"),
    (("image", "import", "/nonexistent"), "/nonexistent: no such file or directory"),
    (("image", "pull", "--insecure", "127.0.0.1:1/x"), "registry 127.0.0.1:1: Connection refused"),
])
def test_image_errors_are_one_line(user, args, message):
    out = user(*args)
    assert out.returncode == 1 and message in out.stderr and len(out.stderr.splitlines()) == 1


def test_help_shows_the_image_verbs(user):
    out = user("--help")
    assert "image" in out.stdout and "--image-root" in out.stdout
    out = user("image", "--help")
    for verb in ("pull", "import", "ls", "rm", "inspect"):
        assert verb in out.stdout


def test_run_image_rm_prints_and_leaves_nothing(user):
    out = user("run", "--image", "busybox", "--rm", "--", "echo", "hi")
    assert (out.returncode, out.stdout, out.stderr) == (0, "hi\n", "")
    assert user.leftovers() == []


def test_run_image_takes_the_image_config_and_overrides(user):
    cid = user.new_id()
    out = user("run", "--image", "busybox", "--name", cid, "-e", "GREETING=hey", "-e", "X=1",
               "--memory", "64m", "--", "sh", "-c",
               "echo $GREETING $X; pwd; cat /etc/motd; ls /opq; ls /sys/class/net; hostname; "
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
               "cat /sys/fs/cgroup/memory.max")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["hey 1", "/data", "motd 3", "new", "lo", cid[:12],
                                      str(64 << 20), ""]
    state = json.loads(user("state", cid).stdout)
    assert state["status"] == "stopped"
    assert state["annotations"]["org.opencontainers.image.exposedPorts"] == "53/udp,80/tcp"
    assert user("delete", cid).returncode == 0
    assert user.leftovers() == []


def test_containers_of_one_image_do_not_see_each_others_writes(user):
    a, b = user.new_id(), user.new_id()
    assert user("run", "--image", "busybox", "--name", a, "--", "sh", "-c",
                "echo mine > /data/keep.txt; rm /etc/motd").returncode == 0
    out = user("run", "--image", "busybox", "--name", b, "--", "sh", "-c",
               "cat /data/keep.txt /etc/motd")
    assert out.stdout == "keep\nmotd 3\n"


def test_run_image_user_and_entrypoint(user, tmp_path, bb_image):
    config = ib.image_config(bb_image.layer_tars, User="user", Entrypoint=["/bin/sh", "-c"],
                             Cmd=["id"])
    image = ib.Image(bb_image.layer_tars, config)
    layout = str(tmp_path / "app")
    ib.write_oci_layout(layout, [image.descriptor()], [image])
    assert user("image", "import", layout, "--name", "app").returncode == 0
    out = user("run", "--image", "app", "--rm")
    assert out.stdout == "uid=1000(user) gid=1000(user)\n"
    out = user("run", "--image", "app", "--rm", "--", "echo overridden")
    assert out.stdout == "overridden\n"


@pytest.mark.parametrize("args,message", [
    (("--image", "nosuch", "--", "true"), "image nosuch: not in the store"),
    (("--image", "busybox", "--memory", "lots", "--", "true"), "--memory lots: must be"),
    (("--image", "busybox", "--rm", "-d", "--", "true"), "--rm: not with --detach"),
    (("--image", "busybox", "--name", "bad/id", "--", "true"), "invalid container ID"),
    (("--image", "busybox", "--rm", "--", "/no/such/binary"), "/no/such/binary"),
    (("--rm", "someid"), "--rm: only with --image"),
    (("someid", "echo"), "a command is given with --image only"),
])
def test_run_image_bad_input_leaves_nothing(user, args, message):
    out = user("run", *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert user.leftovers() == []

