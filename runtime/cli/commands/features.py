from __future__ import annotations

import json

from runtime import VERSION

from runtime import mount_options
from runtime.cli.lean_parser import Parsed
from runtime.config import HOOK_KINDS, NAMESPACE_TYPES
from runtime.container import OCI_VERSION
from runtime.log import Log


def run(p: Parsed, log: Log) -> int:
    """What this runtime really supports, in the shape of runc's `features` (runtime-spec
    features.md)."""
    from runtime.capabilities import NAMES, last_cap

    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted([*mount_options.FLAGS, *mount_options.PROPAGATION]),
        "linux": {
            "namespaces": sorted(t for t in NAMESPACE_TYPES if t != "time"),
            "capabilities": list(NAMES[:last_cap() + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"org.pycontainer.version": VERSION},
    }
    print(json.dumps(features, indent=4))
    return 0
