import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netkit import bridge_name, namespaces, restore_host_networking  # noqa: E402,F401
