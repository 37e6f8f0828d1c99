"""Layer unpacking: what lands on disk, and the archives that are refused (leaving nothing)."""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile

import pytest

from overlay import blobs, layers
from overlay.errors import ImageError
from overlay.images import Image, Layer
from testlib import imagebuild as ib

pytestmark = pytest.mark.root


def unpack(store, tar_bytes: bytes, compress: bool = False, diff_id: str | None = None) -> str:
    """Unpacks one layer through the store, as pull and import do; returns its directory."""
    data = gzip.compress(tar_bytes) if compress else tar_bytes
    blob = blobs.put_bytes(store, data)
    image = Image("test", "sha256:" + "0" * 64, "sha256:" + "0" * 64,
                  (Layer(blob, "", len(data), diff_id or ib.digest(tar_bytes)),), "now")
    with store.adding():
        chain = layers.ensure_unpacked(store, image)
    return layers.directory(store, chain[0])


def assert_nothing_left(store) -> None:
    assert os.listdir(store.path("l")) == []
    assert os.listdir(store.path("layers")) == []


def test_files_keep_owner_mode_mtime_xattrs_links_and_devices(store):
    t = ib.LayerTar().dir("d", mode=0o750, uid=7, gid=8)
    t.file("d/suid", b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000)
    info = tarfile.TarInfo("d/attr")
    info.size, info.mtime = 1, ib.MTIME
    info.pax_headers = {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.redirect": "/x"}
    t.tar.addfile(info, io.BytesIO(b"x"))
    t.symlink("d/abs", "/etc/passwd").symlink("d/rel", "../d/suid").hardlink("d/hl", "d/suid")
    t.chardev("d/null", 1, 3)
    t.tar.addfile(t._info("d/fifo", tarfile.FIFOTYPE, 0o620))
    path = unpack(store, t.bytes(), compress=True)
    d = os.path.join(path, "d")
    st = os.stat(d)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime) == (7, 8, 0o750, ib.MTIME)
    st = os.stat(os.path.join(d, "suid"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_nlink) == (1000, 0o4755, 2)
    assert os.stat(os.path.join(d, "hl")).st_ino == st.st_ino
    assert os.getxattr(os.path.join(d, "attr"), "user.note") == b"hi"
    assert "trusted.overlay.redirect" not in os.listxattr(os.path.join(d, "attr"))
    assert os.readlink(os.path.join(d, "abs")) == "/etc/passwd"
    assert os.lstat(os.path.join(d, "abs")).st_mtime == ib.MTIME
    st = os.lstat(os.path.join(d, "null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(os.path.join(d, "fifo")).st_mode)


def test_whiteouts_become_overlayfs_whiteouts(store):
    t = ib.LayerTar().dir("a").file("a/.wh.gone", b"").dir("o").file("o/.wh..wh..opq", b"")
    path = unpack(store, t.bytes())
    st = os.lstat(os.path.join(path, "a", "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(path, "o"), "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(os.path.join(path, "o"))) == []


def test_a_layer_is_unpacked_once_per_chain_id(store):
    tar_bytes = ib.LayerTar().file("f", b"x").bytes()
    assert unpack(store, tar_bytes) == unpack(store, tar_bytes)
    assert len(os.listdir(store.path("l"))) == 1


@pytest.mark.parametrize("build,problem", [
    (lambda t, o: t.file("../evil", b"x"), r"entry '../evil': the path leaves the layer"),
    (lambda t, o: t.dir("a").file("a/../../evil", b"x"), r"the path leaves the layer"),
    (lambda t, o: t.symlink("link", o).file("link/evil", b"x"),
     r"entry 'link/evil': the path goes through link, which is a symlink"),
    (lambda t, o: t.symlink("up", "../../../../../../..").file(f"up{o}/evil", b"x"),
     r"goes through up, which is a symlink"),
    (lambda t, o: t.hardlink("hl", "../../../../etc/passwd"), r"entry 'hl': the path leaves"),
    (lambda t, o: t.symlink("link", o).hardlink("hl", "link/victim"),
     r"goes through link, which is a symlink"),
    (lambda t, o: t.hardlink("hl", "etc/passwd"), r"entry 'hl': etc does not exist in this layer"),
    (lambda t, o: t.file("f", b"x").file("f/.wh.x", b""),
     r"goes through f, which is not a directory"),
], ids=["dotdot", "dotdot-inside", "through-symlink", "through-relative-symlink",
        "hardlink-dotdot", "hardlink-through-symlink", "hardlink-missing", "through-file"])
def test_escaping_entries_are_refused_and_leave_nothing(store, tmp_path, build, problem):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("victim\n")
    layer = ib.LayerTar().dir("ok").file("ok/first", b"written before the bad entry")
    build(layer, str(outside))
    with pytest.raises(ImageError, match=problem + ".*refused"):
        unpack(store, layer.bytes())
    assert_nothing_left(store)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "victim\n"


def test_absolute_names_stay_inside_the_layer(store):
    path = unpack(store, ib.LayerTar().file("/etc/abs-test", b"inside").bytes())
    with open(os.path.join(path, "etc", "abs-test")) as f:
        assert f.read() == "inside"


def test_wrong_diff_id_and_zstd_are_refused(store):
    tar_bytes = ib.LayerTar().file("f", b"x").bytes()
    with pytest.raises(ImageError, match="not its diff ID"):
        unpack(store, tar_bytes, diff_id="sha256:" + "1" * 64)
    assert_nothing_left(store)
    with pytest.raises(ImageError, match="zstd-compressed layers are not supported"):
        unpack(store, b"\x28\xb5\x2f\xfd" + b"\0" * 100, diff_id="sha256:" + "1" * 64)
    assert_nothing_left(store)


def test_a_truncated_archive_is_refused(store):
    data = gzip.compress(ib.LayerTar().file("f", os.urandom(100_000)).bytes())[:5000]
    with pytest.raises(ImageError, match="layer sha256:"):
        unpack(store, data, diff_id="sha256:" + "1" * 64)
    assert_nothing_left(store)
