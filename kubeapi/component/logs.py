"""The log of a node daemon (kubelet, proxy, cluster DNS, host-gw): one line a record on stderr,
at the level its -v flag asks for, as klog counts it."""
from __future__ import annotations

import logging


def setup_logging(verbosity: int) -> None:
    """Warnings at -v 0, info from 1, debug from 4."""
    level = logging.DEBUG if verbosity >= 4 else logging.INFO if verbosity >= 1 \
        else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
