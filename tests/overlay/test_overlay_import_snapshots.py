"""Import of OCI layouts and docker archives, and overlayfs snapshots of the imported images."""
from __future__ import annotations

import errno
import os
import shutil

import pytest

from overlay import gc, images, importer, layers, snapshots
from overlay.errors import ImageError
from testlib import imagebuild as ib

pytestmark = pytest.mark.root


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def lower_dirs(target: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                options = fields[-1].split(",")
                return next(o for o in options if o.startswith("lowerdir=")).split(":")
    raise AssertionError(f"{target} is not mounted")


@pytest.fixture
def imported(store, layouts):
    image, = importer.import_archive(store, layouts["single"], name="busybox:test")
    return image


def test_import_oci_layout_directory_and_tar(store, layouts, tmp_path, bb_image):
    archive = str(tmp_path / "layout.tar.gz")
    ib.tar_directory(layouts["single"], archive, compress=True)
    first, = importer.import_archive(store, layouts["single"], name="bb:dir")
    second, = importer.import_archive(store, archive, name="bb:tar")
    assert first.digest == second.digest == bb_image.manifest_digest
    assert [i.name for i in images.list_all(store)] == ["docker.io/library/bb:dir",
                                                        "docker.io/library/bb:tar"]
    assert len(os.listdir(store.path("l"))) == 3  # shared, unpacked once


def test_import_picks_the_hosts_platform_from_an_index(store, layouts, bb_image):
    image, = importer.import_archive(store, layouts["multi"], name="multi:1")
    assert image.digest == bb_image.manifest_digest
    # The other architecture's blobs are not kept.
    assert len(os.listdir(store.path("blobs", "sha256"))) == 2 + len(bb_image.layer_tars)


@pytest.mark.parametrize("legacy", [True, False], ids=["docker-legacy", "docker-25"])
def test_import_docker_save_archive(store, tmp_path, bb_image, legacy):
    archive = str(tmp_path / "saved.tar")
    ib.write_docker_archive(archive, bb_image, ["busybox:saved", "example.com/team/bb:1"], legacy)
    found = importer.import_archive(store, archive)
    assert [i.name for i in found] == ["docker.io/library/busybox:saved",
                                       "example.com/team/bb:1"]
    assert found[0].diff_ids == [ib.digest(t) for t in bb_image.layer_tars]


def test_import_needs_a_name_when_the_layout_has_only_a_tag(store, layouts):
    with pytest.raises(ImageError, match="names only the tag 'latest': give the image a name"):
        importer.import_archive(store, layouts["single"])
    assert images.list_all(store) == []


def test_a_corrupt_blob_is_refused_and_nothing_is_stored(store, layouts, tmp_path, bb_image):
    bad = str(tmp_path / "bad")
    shutil.copytree(layouts["single"], bad)
    layer = bb_image.layer_tars[1]
    path = os.path.join(bad, "blobs", "sha256", ib.digest(layer)[7:])
    with open(path, "r+b") as f:
        f.seek(600)
        f.write(b"X")
    with pytest.raises(ImageError, match=f"blob {ib.digest(layer)}: content has digest .*refused"):
        importer.import_archive(store, bad, name="bad:1")
    assert not store.has_blob(ib.digest(layer))
    assert images.list_all(store) == [] and os.listdir(store.path("ingest")) == []
    gc.collect(store)
    assert os.listdir(store.path("l")) == [] and os.listdir(store.path("blobs", "sha256")) == []


def test_whiteouts_opaque_dirs_links_behave_in_the_mounted_rootfs(store, imported):
    root = snapshots.create(store, "c1", layers.chain_ids(imported.diff_ids))
    assert sorted(os.listdir(os.path.join(root, "data"))) == [
        "hl", "keep.txt", "keep2.txt", "motd", "owned"]  # old.txt whited out
    assert os.listdir(os.path.join(root, "opq")) == ["new"]  # a and sub/ hidden by opacity
    with open(os.path.join(root, "etc", "motd")) as f:
        assert f.read() == "motd 3\n"
    assert os.stat(os.path.join(root, "data", "hl")).st_nlink == 2
    assert os.readlink(os.path.join(root, "data", "motd")) == "/etc/motd"
    st = os.stat(os.path.join(root, "data", "owned"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o640)
    assert os.access(os.path.join(root, "bin", "busybox"), os.X_OK)


def test_two_containers_share_layers_but_not_writes(store, imported):
    chain = layers.chain_ids(imported.diff_ids)
    a = snapshots.create(store, "a", chain)
    b = snapshots.create(store, "b", chain)
    assert lower_dirs(a) == lower_dirs(b)
    assert len(os.listdir(store.path("l"))) == 3
    with open(os.path.join(a, "etc", "motd"), "w") as f:
        f.write("changed in a\n")
    os.unlink(os.path.join(a, "data", "keep.txt"))
    with open(os.path.join(b, "etc", "motd")) as f:
        assert f.read() == "motd 3\n"
    assert os.path.exists(os.path.join(b, "data", "keep.txt"))
    with open(os.path.join(layers.directory(store, chain[-1]), "etc", "motd")) as f:
        assert f.read() == "motd 3\n"


def test_removal_unmounts_and_deletes(store, imported):
    root = snapshots.create(store, "gone", layers.chain_ids(imported.diff_ids))
    snapshots.remove(store, "gone")
    assert mounts_under(store.root) == [] and not os.path.exists(os.path.dirname(root))
    with pytest.raises(ImageError, match="exists already"):
        snapshots.create(store, "x", layers.chain_ids(imported.diff_ids))
        snapshots.create(store, "x", layers.chain_ids(imported.diff_ids))
    assert mounts_under(store.root) == [os.path.join(store.root, "snapshots", "x", "rootfs")]


def test_read_only_view(store, imported):
    root = snapshots.create(store, "view", layers.chain_ids(imported.diff_ids)[:1], readonly=True)
    assert os.path.exists(os.path.join(root, "data", "old.txt"))  # only the base layer
    with pytest.raises(OSError) as e:
        open(os.path.join(root, "new-file"), "w")
    assert e.value.errno == errno.EROFS


def test_deep_images_fit_the_mount_options(store):
    """More layers than absolute paths can name in one page of mount options."""
    tars = [ib.LayerTar().file(f"layer{i}", str(i).encode()).file("top", str(i).encode()).bytes()
            for i in range(120)]
    image = ib.Image(tars, ib.image_config(tars), gzip_layers=())
    layout = os.path.join(store.root, "..", "deep")
    ib.write_oci_layout(layout, [image.descriptor()], [image])
    record, = importer.import_archive(store, layout, name="deep:1")
    chain = layers.chain_ids(record.diff_ids)
    assert sum(len(layers.directory(store, c)) + 1 for c in chain) > os.sysconf("SC_PAGE_SIZE")
    root = snapshots.create(store, "deep", chain)
    with open(os.path.join(root, "top")) as f:
        assert f.read() == "119"
    assert len(os.listdir(root)) == 121


def test_image_rm_keeps_layers_that_a_snapshot_uses(store, imported):
    snapshots.create(store, "user", layers.chain_ids(imported.diff_ids))
    images.remove(store, imported.name)
    gc.collect(store)
    assert len(os.listdir(store.path("layers"))) == 3
    snapshots.remove(store, "user")
    gc.collect(store)
    assert os.listdir(store.path("layers")) == [] and os.listdir(store.path("l")) == []
    assert os.listdir(store.path("blobs", "sha256")) == []
