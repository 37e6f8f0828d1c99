import pytest

from netkit import bridge_name, namespaces, restore_host_networking, unique  # noqa: F401
from netns import nat, nat_backend


@pytest.fixture
def network_name():
    """network_name() -> a unique CNI network name; the NAT rule sets the plugins make for it
    (host ports forwarded to pods, masquerade) are removed after the test, however it ended."""
    names: list[str] = []

    def make() -> str:
        names.append(unique("net"))
        return names[-1]

    yield make
    backend = nat_backend.host_backend()
    for name in names:
        for kind in ("hp", "mq"):
            for rule_set in backend.names(nat.network_prefix(kind, name)):
                backend.delete(rule_set)
