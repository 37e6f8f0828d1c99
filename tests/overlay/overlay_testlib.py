"""Helpers of the overlay tests: the pycontainer binary against a store, docker config.json."""
from __future__ import annotations

import base64
import json
import os
import subprocess

from testlib.paths import PYCONTAINER, REPO
from testlib.registry import PASSWORD, USER


def cli(store_root: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 120)
    return subprocess.run([PYCONTAINER, "--image-root", store_root, *args], **kwargs)


def write_auth_file(path: str, registries: list[str], password: str = PASSWORD) -> str:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    with open(path, "w") as f:
        json.dump({"auths": {host: {"auth": token} for host in registries}}, f)
    return path
