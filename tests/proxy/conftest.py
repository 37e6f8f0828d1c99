"""Fixtures of the proxy tests: pods on a bridge of the test's own (proxy_testlib.PodNet), a
unique nftables table that is deleted whatever happened, and a Syncer writing into it."""
from __future__ import annotations

import pytest

from netkit import bridge_name, restore_host_networking  # noqa: F401
from netns import sysctl
from proxy_testlib import PodNet, delete_table, ensure_bridge_netfilter, table_name


@pytest.fixture(scope="session")
def bridge_netfilter():
    before = ensure_bridge_netfilter()
    yield
    if before is not None:
        sysctl.write("net.bridge.bridge-nf-call-iptables", before)


@pytest.fixture
def podnet(bridge_name, bridge_netfilter):
    net = PodNet(bridge_name)
    try:
        yield net
    finally:
        net.cleanup()


@pytest.fixture
def table():
    name = table_name()
    try:
        yield name
    finally:
        delete_table(name)


@pytest.fixture
def make_syncer(table):
    """make_syncer(**ProxyOptions fields) -> a Syncer on the test's table, through the real
    libnftables; the table is gone after the test."""
    from netns.nftables import Nft
    from proxy.rules import ProxyOptions
    from proxy.syncer import Syncer

    contexts = []

    def make(**options):
        nft = Nft()
        contexts.append(nft)
        return Syncer(ProxyOptions(table=table, **options), nft.run)

    yield make
    for nft in contexts:
        nft.close()
