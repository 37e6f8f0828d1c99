"""`pycontainer image pull` end to end, as README promises it: `--insecure` also accepts a TLS
registry whose certificate nobody signed (and only with it), and credentials come from the
user's ~/.docker/config.json when neither --authfile nor $DOCKER_CONFIG says otherwise."""
from __future__ import annotations

import os

import pytest

from testlib import imagebuild as ib
from overlay import images
from overlay_testlib import cli, write_auth_file

pytestmark = [pytest.mark.root, pytest.mark.slow]


def pulled(store) -> list[tuple[str, list[str]]]:
    return [(image.name, image.diff_ids) for image in images.list_all(store)]


def test_insecure_pulls_over_tls_without_verifying_and_only_then(store, tls_registry, bb_image):
    ref = f"{tls_registry.host}/tls/busybox"
    out = cli(store.root, "image", "pull", ref)
    assert (out.returncode, out.stdout) == (1, ""), out.stderr
    assert len(out.stderr.splitlines()) == 1 and "CERTIFICATE_VERIFY_FAILED" in out.stderr, \
        out.stderr
    assert pulled(store) == []
    # The registry speaks HTTPS only: this succeeds over TLS, not by falling back to HTTP.
    out = cli(store.root, "image", "pull", "--insecure", ref)
    assert out.returncode == 0, out.stderr
    assert pulled(store) == [(f"{ref}:latest", [ib.digest(t) for t in bb_image.layer_tars])]


def test_credentials_come_from_the_home_docker_config(store, basic_registry, tmp_path):
    ref = f"{basic_registry.host}/basic/busybox"
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"}
    env["HOME"] = str(home)
    out = cli(store.root, "image", "pull", "--insecure", ref, env=env)
    assert out.returncode == 1 and "asks for a login and no credentials" in out.stderr, out.stderr
    (home / ".docker").mkdir(parents=True)
    write_auth_file(str(home / ".docker" / "config.json"), [basic_registry.host])
    out = cli(store.root, "image", "pull", "--insecure", ref, env=env)
    assert out.returncode == 0, out.stderr
    assert [name for name, _ in pulled(store)] == [f"{ref}:latest"]
