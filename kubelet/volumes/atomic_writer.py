"""Writing a configMap, secret, downwardAPI or projected volume so that a reader never sees half
an update (the kubelet's AtomicWriter): every version is written whole into a new timestamped
directory `..<time>.<random>`, then the `..data` symlink is switched to it by a rename, and the
names the user sees are symlinks into `..data` (`key -> ..data/key`). The old version goes last.
Nothing is written when the payload, the modes and the owners on disk are the same already."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

DATA_DIR = "..data"
_DATA_TMP = "..data_tmp"


class PayloadError(ValueError):
    """A path of the payload is not a plain relative path inside the volume."""


class File:
    __slots__ = ("data", "mode", "uid")

    def __init__(self, data: bytes, mode: int, uid: int | None = None) -> None:
        self.data = data
        self.mode = mode
        self.uid = uid  # the owner (a service account token's fsUser), None: root


def check_path(path: str) -> None:
    """As the kubelet's validatePath: relative, no '..' element, not starting with '..'."""
    if not path:
        raise PayloadError("invalid path: must not be empty")
    if os.path.isabs(path):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if ".." in path.split("/"):
        raise PayloadError(f"invalid path: must not contain '..': {path}")
    if path.startswith(".."):
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def write(target: str, payload: dict[str, File]) -> bool:
    """Makes `target` show exactly `payload` (relative path -> File); True if it wrote."""
    clean: dict[str, File] = {}
    for path, f in payload.items():
        check_path(path)
        clean[os.path.normpath(path)] = f
    data_link = os.path.join(target, DATA_DIR)
    try:
        old_dir = os.readlink(data_link)
    except FileNotFoundError:
        old_dir = ""
    old_visible = _visible(target) if old_dir else set()
    new_visible = {p.split("/", 1)[0] for p in clean}
    stale = old_visible - new_visible
    if old_dir and not stale and not _differs(os.path.join(target, old_dir), clean):
        return False
    prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new_dir = tempfile.mkdtemp(prefix=prefix, dir=target)
    try:
        os.chmod(new_dir, 0o755)
        for path, f in clean.items():
            full = os.path.join(new_dir, path)
            os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
            with open(full, "wb") as out:
                out.write(f.data)
            os.chmod(full, f.mode)
            if f.uid is not None:
                os.chown(full, f.uid, -1)
        tmp_link = os.path.join(target, _DATA_TMP)
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        os.symlink(os.path.basename(new_dir), tmp_link)
        os.rename(tmp_link, data_link)
    except BaseException:
        shutil.rmtree(new_dir, ignore_errors=True)
        raise
    for name in sorted(new_visible):
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(DATA_DIR, name), link)
    for name in stale:
        os.unlink(os.path.join(target, name))
    if old_dir and old_dir != os.path.basename(new_dir):
        shutil.rmtree(os.path.join(target, old_dir), ignore_errors=True)
    return True


def _visible(target: str) -> set[str]:
    """The user-visible names: the symlinks into ..data."""
    names = set()
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        try:
            if os.readlink(os.path.join(target, name)).startswith(DATA_DIR + "/"):
                names.add(name)
        except OSError:
            continue
    return names


def _differs(old_dir: str, payload: dict[str, File]) -> bool:
    """True unless old_dir holds exactly these files, bytes and modes."""
    existing = set()
    for dirpath, _dirs, files in os.walk(old_dir):
        for name in files:
            existing.add(os.path.relpath(os.path.join(dirpath, name), old_dir))
    if existing != set(payload):
        return True
    for path, f in payload.items():
        full = os.path.join(old_dir, path)
        try:
            st = os.stat(full)
            if st.st_mode & 0o7777 != f.mode or (f.uid is not None and st.st_uid != f.uid):
                return True
            with open(full, "rb") as current:
                if current.read() != f.data:
                    return True
        except OSError:
            return True
    return False
