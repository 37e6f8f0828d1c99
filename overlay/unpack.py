"""Unpacking one layer archive (tar, gzip or plain) into an empty directory, in overlayfs form.

Whiteouts become what overlayfs reads: `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq`
the trusted.overlay.opaque=y xattr on its directory. Ownership, modes, mtimes, xattrs, hard
links, device nodes and FIFOs are kept.

Nothing outside the directory is ever written: every path is walked component by component with
O_NOFOLLOW relative to the layer's directory fd, so an entry that goes through a symlink (which
may point anywhere, e.g. `/etc` or `../../..`), names `..` above the top, or hard-links to
something outside the layer is refused. The caller removes the half-unpacked directory.
"""
from __future__ import annotations

import errno
import gzip
import os
import stat
import tarfile
import zlib
from typing import BinaryIO

from overlay.digest import HashingReader
from overlay.errors import ImageError

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_XATTR_PAX = "SCHILY.xattr."
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _EntryError(Exception):
    pass


def unpack(blob: BinaryIO, dest: str, diff_id: str | None, what: str) -> int:
    """Unpacks the layer archive `blob` into the existing empty directory `dest`; returns the
    uncompressed size. `diff_id`, when given, is verified against the uncompressed stream."""
    head = blob.read(4)
    blob.seek(0)
    if head.startswith(_ZSTD_MAGIC):
        raise ImageError(f"{what}: zstd-compressed layers are not supported (no zstd decoder "
                         "here); use gzip or uncompressed layers")
    stream = gzip.GzipFile(fileobj=blob, mode="rb") if head.startswith(_GZIP_MAGIC) else blob
    reader = HashingReader(stream)
    root = os.open(dest, _DIR_FLAGS)
    unpacker = _Unpacker(root)
    name = None
    try:
        with tarfile.open(fileobj=reader, mode="r|", errors="surrogateescape") as tar:
            for member in tar:
                name = member.name
                unpacker.add(member, tar)
            name = None
            unpacker.finish()
        reader.drain()
    except _EntryError as e:
        raise ImageError(f"{what}: entry {name!r}: {e}: refused") from None
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError, zlib.error) as e:
        where = f"entry {name!r}: " if name else ""
        raise ImageError(f"{what}: {where}{e}") from None
    finally:
        unpacker.close()
        os.close(root)
    if diff_id and reader.digest() != diff_id:
        raise ImageError(f"{what}: uncompressed content has digest {reader.digest()}, not its "
                         f"diff ID {diff_id}: refused")
    return reader.size


def split(path: str) -> list[str]:
    """The components of an archive path, relative to the layer's top; refuses `..` above it."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise _EntryError("the path leaves the layer (..)")
            parts.pop()
        else:
            parts.append(part)
    return parts


class _Unpacker:
    def __init__(self, root: int) -> None:
        self.root = root
        self._dirs: dict[tuple[str, ...], int] = {(): root}
        self._dir_times: list[tuple[tuple[str, ...], int]] = []

    def close(self) -> None:
        for parts, fd in self._dirs.items():
            if parts:
                os.close(fd)
        self._dirs = {(): self.root}

    def _forget(self) -> None:
        """Something was removed or replaced: cached directory fds may name the wrong thing."""
        self.close()

    def dir_fd(self, parts: list[str], create: bool) -> int:
        key = tuple(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        parent = self.dir_fd(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise _EntryError(f"{'/'.join(parts)} does not exist in this layer") from None
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                kind = "a symlink" if stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode) \
                    else "not a directory"
                raise _EntryError(f"the path goes through {'/'.join(parts)}, which is {kind}") \
                    from None
            raise
        self._dirs[key] = fd
        return fd

    def add(self, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = split(m.name)
        if not parts:
            if m.isdir():
                self._metadata(self.root, None, m, is_dir=True)
                self._dir_times.append(((), int(m.mtime)))
            return
        base = parts[-1]
        parent = self.dir_fd(parts[:-1], create=True)
        if base.startswith(_WHITEOUT):
            self._whiteout(parent, base)
            return
        existing = _lstat(parent, base)
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                self._remove(parent, base, existing)
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = self.dir_fd(parts, create=False)
            self._metadata(fd, None, m, is_dir=True)
            self._dir_times.append((tuple(parts), int(m.mtime)))
        elif m.isreg():
            self._remove(parent, base, existing)
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=parent)
            try:
                source = tar.extractfile(m)
                while chunk := source.read(_CHUNK):
                    os.write(fd, chunk)
                self._metadata(fd, None, m)
            finally:
                os.close(fd)
        elif m.issym():
            self._remove(parent, base, existing)
            os.symlink(m.linkname, base, dir_fd=parent)
            self._metadata(parent, base, m)
        elif m.islnk():
            self._hard_link(parent, base, existing, m.linkname)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._remove(parent, base, existing)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            device = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
            os.mknod(base, kind | 0o600, device, dir_fd=parent)
            self._metadata(parent, base, m)
        else:
            raise _EntryError(f"unsupported entry type {m.type!r}")
        if not m.isdir() and not m.islnk():
            os.utime(base, ns=(int(m.mtime) * 10**9,) * 2, dir_fd=parent, follow_symlinks=False)

    def _whiteout(self, parent: int, base: str) -> None:
        if base == _OPAQUE:
            os.setxattr(parent, "trusted.overlay.opaque", b"y")
            return
        if base.startswith(_WHITEOUT + _WHITEOUT):
            return  # other aufs metadata (.wh..wh.plnk, ...): nothing for overlayfs
        name = base[len(_WHITEOUT):]
        if name in ("", ".", ".."):
            raise _EntryError("a whiteout must name a file")
        self._remove(parent, name, _lstat(parent, name))
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)

    def _hard_link(self, parent: int, base: str, existing: os.stat_result | None,
                   linkname: str) -> None:
        target = split(linkname)
        if not target:
            raise _EntryError("a hard link to the layer's top directory")
        target_dir = self.dir_fd(target[:-1], create=False)
        target_stat = _lstat(target_dir, target[-1])
        if target_stat is None:
            raise _EntryError(f"hard link target {linkname!r} is not in this layer")
        if stat.S_ISDIR(target_stat.st_mode):
            raise _EntryError(f"hard link target {linkname!r} is a directory")
        if existing is not None and (existing.st_dev, existing.st_ino) == \
                (target_stat.st_dev, target_stat.st_ino):
            return
        self._remove(parent, base, existing)
        os.link(target[-1], base, src_dir_fd=target_dir, dst_dir_fd=parent, follow_symlinks=False)

    def _remove(self, parent: int, base: str, existing: os.stat_result | None) -> None:
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode):
            _remove_tree(parent, base)
            self._forget()
        else:
            os.unlink(base, dir_fd=parent)

    def _metadata(self, fd: int, name: str | None, m: tarfile.TarInfo, is_dir: bool = False) -> None:
        """Owner, mode and xattrs of the entry: on `fd` itself, or on `name` in directory `fd`
        without following it (symlinks, devices)."""
        if name is None:
            os.chown(fd, m.uid, m.gid)
        else:
            os.chown(name, m.uid, m.gid, dir_fd=fd, follow_symlinks=False)
        for key, value in m.pax_headers.items():
            if key.startswith(_XATTR_PAX):
                attr = key[len(_XATTR_PAX):]
                if attr.startswith("trusted.overlay."):
                    continue  # only whiteouts may say what overlayfs does with a layer
                raw = value.encode("utf-8", "surrogateescape")
                if name is None:
                    os.setxattr(fd, attr, raw)
                else:
                    os.setxattr(f"/proc/self/fd/{fd}/{name}", attr, raw, follow_symlinks=False)
        if not m.issym():
            # After chown, which clears the set-user-ID and set-group-ID bits. `name` is a node
            # just made here, not a symlink.
            os.chmod(fd if name is None else name, m.mode & 0o7777,
                     **({} if name is None else {"dir_fd": fd}))

    def finish(self) -> None:
        """Directory mtimes last: creating their entries changed them."""
        for parts, mtime in reversed(self._dir_times):
            try:
                fd = self.dir_fd(list(parts), create=False)
            except _EntryError:
                continue  # removed by a later entry
            os.utime(fd, ns=(mtime * 10**9,) * 2)


def _lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove_tree(parent: int, name: str) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        for entry in os.listdir(fd):
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _remove_tree(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
