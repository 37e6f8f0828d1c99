import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netkit import bridge_name, namespaces  # noqa: E402,F401  (fixtures)
from netns import sysctl  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def restore_ip_forward():
    """The bridge plugins (ours and the reference) turn on IPv4 forwarding for a gateway
    bridge; put back what the host had when the tests are done."""
    before = sysctl.read("net.ipv4.ip_forward")
    yield
    sysctl.write("net.ipv4.ip_forward", before)
