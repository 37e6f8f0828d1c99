"""Fifty shims started and shut down leave nothing behind."""
from __future__ import annotations

import os

import pytest

import shim
from shim_testlib import alive

COUNT = 50


@pytest.mark.root
@pytest.mark.slow
def test_fifty_shims_leave_nothing(shims):
    infos = [shims.start("sleep", "1000") for _ in range(COUNT)]
    listed = {s.id: s for s in shim.list_shims(shims.roots.shim_root)}
    for info in infos:
        assert listed[info.id].pid == info.pid and listed[info.id].container_pid == \
            info.container_pid
        assert alive(info.pid) and alive(info.container_pid)
    for info in infos:
        with shims.connect(info.id) as c:
            c.shutdown()
    for info in infos:
        assert not alive(info.pid) and not alive(info.container_pid)
        assert shims.leftovers(info.id) == []
        assert not os.path.exists(info.socket)
    assert not {s.id for s in shim.list_shims(shims.roots.shim_root)} & set(listed)
