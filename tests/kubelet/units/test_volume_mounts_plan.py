"""kubelet.volumes without root, against linux.fake.RecordingSyscalls: which volumes get a tmpfs
(emptyDir with medium Memory, sized by its sizeLimit; secret, downwardAPI and projected, sized
by the node's memory), which stay plain directories, and that the files land in the volume."""
from __future__ import annotations

import os

import pytest

from kubelet.config_objects import ConfigObjects
from kubelet.pods import Pod
from kubelet.volumes.manager import VolumeError, Volumes
from linux import constants as lx
from linux.fake import RecordingSyscalls

NODE_MEMORY = 1 << 30


def pod(volumes: list[dict]) -> Pod:
    return Pod({"metadata": {"name": "p", "namespace": "default", "uid": "u-1",
                             "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c"}], "volumes": volumes}})


def volumes(tmp_path, kernel: RecordingSyscalls) -> Volumes:
    return Volumes(str(tmp_path), ConfigObjects(None), node_cpus=2, node_memory=NODE_MEMORY,
                   syscalls=kernel)


def test_memory_backed_volumes_get_a_tmpfs_each_sized_as_kube_sizes_them(tmp_path):
    kernel = RecordingSyscalls()
    manager = volumes(tmp_path, kernel)
    labels = {"downwardAPI": {"items": [{"path": "labels",
                                         "fieldRef": {"fieldPath": "metadata.labels"}}]}}
    paths = manager.setup(pod([
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "plain", "emptyDir": {}},
        {"name": "info", **labels},
    ]))
    flags = lx.MS_NOSUID | lx.MS_NODEV
    assert kernel.calls == [
        ("mount", "tmpfs", paths["scratch"], "tmpfs", flags, f"size={64 << 20}"),
        ("mount", "tmpfs", paths["info"], "tmpfs", flags, f"size={NODE_MEMORY}"),
    ]
    assert paths["plain"].endswith("/volumes/kubernetes.io~empty-dir/plain")
    assert os.path.isdir(paths["plain"])
    with open(os.path.join(paths["info"], "labels")) as f:
        assert f.read() == 'app="web"'


def test_an_unsupported_medium_is_refused_naming_the_volume_with_nothing_mounted(tmp_path):
    kernel = RecordingSyscalls()
    manager = volumes(tmp_path, kernel)
    with pytest.raises(VolumeError) as refused:
        manager.setup(pod([{"name": "huge", "emptyDir": {"medium": "HugePages"}}]))
    assert "huge" in str(refused.value) and "HugePages" in str(refused.value)
    assert kernel.calls == []
