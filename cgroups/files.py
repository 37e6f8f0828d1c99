"""Reading and writing cgroup files, listing member processes, and removing cgroup directories."""
from __future__ import annotations

import errno
import os
import time

from cgroups.errors import CgroupError

# How long destroy keeps retrying rmdir while the kernel still holds a cgroup (exiting tasks).
_RMDIR_PATIENCE = 5.0


def read_text(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks).decode()
            chunks.append(chunk)
    finally:
        os.close(fd)


def read_int(path: str) -> int | None:
    """The number in a one-value file; None for "max" (unlimited)."""
    text = read_text(path).strip()
    return None if text == "max" else int(text)


def read_keyed(path: str) -> dict[str, int]:
    """A file of "key value" lines (cpu.stat, memory.events, memory.oom_control...)."""
    values = {}
    for line in read_text(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def write_file(path: str, value: str) -> None:
    """Write one value in one write(2), as cgroupfs wants; raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def write_field(path: str, value: str, field: str) -> None:
    """Write the value of an OCI field; a failure names the field, the file and the reason."""
    try:
        write_file(path, value)
    except OSError as e:
        raise CgroupError(f"{field}: writing {value!r} to {path} failed: {e.strerror}") from None


def read_pids(top: str) -> list[int]:
    """Every process in the cgroup at top and in its descendants."""
    pids: list[int] = []
    for directory, _, _ in os.walk(top):
        for name in ("cgroup.procs", "cgroup.threads"):
            try:
                text = read_text(directory + "/" + name)
            except FileNotFoundError:
                break  # removed while we walked
            except OSError as e:
                if e.errno == errno.EOPNOTSUPP:
                    continue  # a threaded cgroup (v2) lists its members in cgroup.threads
                raise
            pids.extend(int(line) for line in text.split())
            break
    return pids


def remove_tree(top: str) -> None:
    """rmdir the cgroup at top and its descendants, deepest first; an absent cgroup is fine."""
    # Most have no descendants: one rmdir, without listing the directory (os.walk's open,
    # getdents and close per hierarchy) unless the kernel refuses it.
    try:
        os.rmdir(top)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    for directory, _, _ in os.walk(top, topdown=False):
        _rmdir(directory)


def _rmdir(path: str) -> None:
    delay = 0.001
    deadline = time.monotonic() + _RMDIR_PATIENCE
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            # EBUSY: the kernel still holds the cgroup (a task is still exiting); wait a little.
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {e.strerror}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
