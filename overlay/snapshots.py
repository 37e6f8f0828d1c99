"""Snapshots: a container's root filesystem as an overlayfs mount of its image's layers (the
lowerdir stack, shared) and its own upper and work directories (private), or a read-only view of
the layers for inspection.

    <root>/snapshots/<key>/snapshot.json   the chain IDs it stacks (kept from gc while it exists)
    <root>/snapshots/<key>/upper, work     the container's writes
    <root>/snapshots/<key>/rootfs          the mount point
"""
from __future__ import annotations

import json
import os

from linux import constants as lx
from linux.syscalls import Syscalls
from overlay import layers as layers_mod
from overlay.errors import ImageError
from overlay.store import Store

# The kernel copies mount options into one page, NUL included.
_MAX_OPTIONS = os.sysconf("SC_PAGE_SIZE") - 1
_EMPTY = "empty"


def path(store: Store, key: str) -> str:
    _check_key(key)
    return store.path("snapshots", key)


def rootfs(store: Store, key: str) -> str:
    return os.path.join(path(store, key), "rootfs")


def create(store: Store, key: str, chain_ids: list[str], readonly: bool = False) -> str:
    """Mounts a new snapshot of the layers `chain_ids` (bottom first); returns its rootfs path.
    On failure nothing is left: no directory, no mount."""
    snap = path(store, key)
    with store.adding():
        lower = [layers_mod.directory(store, c) for c in reversed(chain_ids)]
        try:
            os.mkdir(snap, 0o700)
        except FileExistsError:
            raise ImageError(f"snapshot {key}: exists already") from None
        try:
            # Written plainly, not synced: no one reads it before we return (gc waits for
            # adding() to end), and a snapshot does not outlive a reboot in use (its container's
            # state lives in /run), so a torn record after a crash only marks garbage. The two
            # fsyncs were a third of a snapshot's cost.
            with open(os.path.join(snap, "snapshot.json"), "w") as f:
                json.dump({"key": key, "layers": chain_ids, "readonly": readonly}, f)
            target = os.path.join(snap, "rootfs")
            os.mkdir(target, 0o755)
            upper = work = None
            if not readonly:
                upper, work = os.path.join(snap, "upper"), os.path.join(snap, "work")
                os.mkdir(upper, 0o755)
                os.mkdir(work, 0o700)
            # overlayfs wants a lowerdir always, and two without an upper dir.
            while len(lower) < (1 if upper else 2):
                lower.append(_empty_dir(store))
            _mount(store, lower, upper, work, target)
        except BaseException:
            _remove_tree(snap)
            raise
    return target


def _mount(store: Store, lower: list[str], upper: str | None, work: str | None,
           target: str) -> None:
    flags = lx.MS_RDONLY if upper is None else 0
    options = _options(lower, upper, work)
    if len(options) <= _MAX_OPTIONS:
        Syscalls().mount("overlay", target, "overlay", flags, options)
        return
    # Too deep for absolute paths: name the layers relative to an fd of l/, which the kernel
    # resolves while it parses the options (thread-safe, unlike chdir).
    fd = os.open(store.path("l"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        prefix = f"/proc/self/fd/{fd}/"
        short = [prefix + os.path.relpath(p, store.path("l")) for p in lower]
        options = _options(short, upper, work)
        if len(options) > _MAX_OPTIONS:
            raise ImageError(f"image has {len(lower)} layers: too many for one overlayfs mount")
        Syscalls().mount("overlay", target, "overlay", flags, options)
    finally:
        os.close(fd)


def _options(lower: list[str], upper: str | None, work: str | None) -> str:
    options = "lowerdir=" + ":".join(lower)
    if upper:
        options += f",upperdir={upper},workdir={work}"
    return options


def _empty_dir(store: Store) -> str:
    empty = store.path("l", _EMPTY)
    os.makedirs(empty, 0o755, exist_ok=True)
    return empty


def remove(store: Store, key: str) -> None:
    """Unmounts and deletes the snapshot; no error if it is gone already."""
    snap = path(store, key)
    target = os.path.join(snap, "rootfs")
    syscalls = Syscalls()
    try:
        syscalls.umount2(target)
    except OSError as e:
        if e.errno == 16:  # EBUSY: a process still uses it; detach, it goes with the last user
            syscalls.umount2(target, lx.MNT_DETACH)
        elif e.errno not in (22, 2):  # EINVAL: not mounted; ENOENT: no such snapshot
            raise
    _remove_tree(snap)
    if os.path.exists(snap):
        raise ImageError(f"snapshot {key}: could not remove {snap}")


# What a snapshot holds when its container wrote nothing to its upper directory (overlayfs
# makes work/work), deepest first.
_LAYOUT = ("snapshot.json", "rootfs", "work/work", "work", "upper", "")


def _remove_tree(path: str) -> None:
    """The snapshot's own few entries by name, which is most of them; a tree walk for the rest."""
    try:
        os.unlink(os.path.join(path, _LAYOUT[0]))
        for name in _LAYOUT[1:]:
            os.rmdir(os.path.join(path, name))
        return
    except OSError:
        pass  # written to, half-made or half-removed
    import shutil  # its imports cost more than a snapshot's creation

    shutil.rmtree(path, ignore_errors=True)


def list_keys(store: Store) -> list[str]:
    return sorted(os.listdir(store.path("snapshots")))


def layers_in_use(store: Store) -> set[str]:
    used: set[str] = set()
    for key in list_keys(store):
        try:
            with open(os.path.join(store.path("snapshots", key), "snapshot.json")) as f:
                used.update(json.load(f)["layers"])
        except (FileNotFoundError, ValueError, KeyError):
            continue  # half-made or half-removed
    return used


def _check_key(key: str) -> None:
    if not key or key in (".", "..") or "/" in key or "," in key or ":" in key or len(key) > 128:
        raise ImageError(f"snapshot key {key!r}: must be a plain name without '/', ',' or ':'")
