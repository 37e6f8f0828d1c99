"""The ClusterIP and NodePort bitmaps kept in storage (apiserver.rangealloc): several allocators on
one SQLite file, as several servers on one storage, stale caches, kube's RangeAllocation
encoding and the repair of leaked items."""
from __future__ import annotations

import concurrent.futures
import json

import pytest

from apiserver.ipalloc import IPAllocator
from apiserver.portalloc import PortAllocator
from apiserver.rangealloc import AllocationError, StoredRange, decode, encode
from apiserver.storage.sqlite import SQLiteStorage


@pytest.fixture
def storage(tmp_path):
    s = SQLiteStorage(str(tmp_path / "state.db"))
    yield s
    s.close()


def test_the_value_is_kubes_range_allocation():
    value = json.loads(encode("10.0.0.0/24", {0, 1, 9}))
    # Go's big.Int bytes of bits 0, 1 and 9: 0x02 0x03
    assert value == {"kind": "RangeAllocation", "apiVersion": "v1",
                     "metadata": {}, "range": "10.0.0.0/24",
                     "data": "AgM="}
    assert decode(encode("30000-32767", {0, 2767})) == ("30000-32767", {0, 2767})
    assert decode(encode("30000-32767", set())) == ("30000-32767", set())


def test_servers_on_one_storage_never_hand_out_an_item_twice(storage):
    ranges = [StoredRange(storage, PortAllocator.parse("30000-30039")) for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ports = list(pool.map(lambda i: ranges[i % 4].allocate_next(), range(40)))
    assert sorted(ports) == list(range(30000, 30040))
    with pytest.raises(AllocationError, match="range is full"):
        ranges[0].allocate_next()
    assert decode(storage.get(PortAllocator.key).value) == ("30000-30039", set(range(40)))


def test_a_stale_cache_asks_the_storage_before_refusing(storage):
    first = StoredRange(storage, IPAllocator.parse("198.18.0.0/28"))
    second = StoredRange(storage, IPAllocator.parse("198.18.0.0/28"))
    first.allocate("198.18.0.5")
    second.mark(set())  # second's cache now holds .5
    first.release("198.18.0.5")
    second.allocate("198.18.0.5")  # taken in second's cache, free in storage
    with pytest.raises(AllocationError, match="already allocated"):
        first.allocate("198.18.0.5")


def test_a_changed_range_replaces_the_stored_one(storage):
    StoredRange(storage, IPAllocator.parse("198.18.0.0/28")).allocate("198.18.0.5")
    wider = StoredRange(storage, IPAllocator.parse("198.18.0.0/24"))
    wider.mark({"198.18.0.9"})
    assert decode(storage.get(IPAllocator.key).value) == ("198.18.0.0/24", {8})


def test_repair_frees_what_no_service_held_for_two_rounds(storage):
    ips = StoredRange(storage, IPAllocator.parse("198.18.0.0/28"))
    for ip in ("198.18.0.2", "198.18.0.3", "198.18.0.4"):
        ips.allocate(ip)
    held = {"198.18.0.2"}
    suspects = ips.free_leaks(held, set())
    assert suspects == {2, 3}  # offsets of .3 and .4: nothing freed in the first round
    ips.allocate("198.18.0.6")  # a reservation in flight: a suspect of this round only
    suspects = ips.free_leaks(held, suspects)
    assert suspects == {5}
    assert decode(storage.get(IPAllocator.key).value)[1] == {1, 5}
