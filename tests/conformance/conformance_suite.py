"""The OCI runtime-tools validation suite, built once from ../shared/refbin and kept in a cache.

The cache directory is named after the source tarball's sha256, so a new tarball builds anew and
an unchanged one is never rebuilt; it lives outside the checkout ($PYCONTAINER_TEST_CACHE,
default /var/cache/pycontainer-tests). A build goes to a staging directory renamed into place
when complete, under an exclusive lock, so two test runs never build at once and never see half
a build.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.normpath(os.path.join(REPO, "..", "shared", "refbin",
                                       "runtime-tools-260e151-src.tar.xz"))
CACHE_ROOT = os.environ.get("PYCONTAINER_TEST_CACHE", "/var/cache/pycontainer-tests")
# Debian's Go 1.19 from the vendored modules, never the network (the README of refbin).
BUILD_ENV = {"GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GO111MODULE": "on",
             "GOTOOLCHAIN": "local"}


class BuildError(Exception):
    """The suite cannot be built here; the message says what to do."""


@dataclass(frozen=True)
class Suite:
    """A built suite: `runtimetest`, the rootfs tarball and validation/NAME.t in one directory."""

    path: str

    def file(self, name: str) -> str:
        return os.path.join(self.path, "validation", f"{name}.t")

    def names(self) -> list[str]:
        return sorted(os.path.basename(t)[:-2]
                      for t in glob.glob(os.path.join(self.path, "validation", "*.t")))


def source_sha256(source: str = SOURCE) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(source: str = SOURCE) -> str:
    return os.path.join(CACHE_ROOT, f"runtime-tools-260e151-{source_sha256(source)[:16]}")


def file_names(source: str = SOURCE) -> list[str]:
    """The validation files, known without building: one per validation/NAME/NAME.go."""
    if not os.path.exists(source):
        return []
    built = cache_dir(source)
    if os.path.isdir(built):
        return Suite(built).names()
    listing = subprocess.run(["tar", "-tJf", source], capture_output=True, text=True, check=True)
    names = set()
    for member in listing.stdout.split():
        parts = member.split("/")
        # <top>/validation/NAME/NAME.go; validation/util/ holds the shared code, not a file.
        if len(parts) == 4 and parts[1] == "validation" and parts[3] == f"{parts[2]}.go" \
                and parts[2] != "util":
            names.add(parts[2])
    return sorted(names)


def build(source: str = SOURCE) -> Suite:
    """The built suite from the cache, building it first if this tarball never was."""
    if not os.path.exists(source):
        raise BuildError(f"runtime-tools source: {source} does not exist")
    for tool in ("go", "make", "tar"):
        if shutil.which(tool) is None:
            raise BuildError(f"runtime-tools build: `{tool}` not found; "
                             "scripts/install.sh installs golang-go and make")
    os.makedirs(CACHE_ROOT, exist_ok=True)
    dest = cache_dir(source)
    with open(os.path.join(CACHE_ROOT, "runtime-tools.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(dest):
            staging = tempfile.mkdtemp(prefix=".build-", dir=CACHE_ROOT)
            try:
                _build_into(source, staging, os.path.join(staging, "suite"))
                os.rename(os.path.join(staging, "suite"), dest)
            finally:
                shutil.rmtree(staging)
    return Suite(dest)


def _build_into(source: str, staging: str, out: str) -> None:
    subprocess.run(["tar", "-xJf", source, "-C", staging], check=True)
    tree = next(os.path.join(staging, d) for d in os.listdir(staging)
                if os.path.isfile(os.path.join(staging, d, "Makefile")))
    env = {**os.environ, **BUILD_ENV, "HOME": staging,
           "GOCACHE": os.path.join(staging, "gocache"), "GOPATH": os.path.join(staging, "gopath")}
    made = subprocess.run(["make", "-j2", "runtimetest", "validation-executables"], cwd=tree,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if made.returncode != 0:
        tail = "\n".join(made.stdout.splitlines()[-30:])
        raise BuildError(f"runtime-tools build failed (make exit {made.returncode}):\n{tail}")
    os.makedirs(os.path.join(out, "validation"))
    shutil.copy2(os.path.join(tree, "runtimetest"), out)
    for rootfs in glob.glob(os.path.join(tree, "rootfs-*.tar.gz")):
        shutil.copy2(rootfs, out)
    for program in glob.glob(os.path.join(tree, "validation", "*", "*.t")):
        shutil.copy2(program, os.path.join(out, "validation"))
