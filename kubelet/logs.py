"""Container log rotation (the kubelet's container log manager): every
containerLogMonitorInterval, a running container's log bigger than containerLogMaxSize is
renamed to <n>.log.<YYYYMMDD-hhmmss> and its shim reopens <n>.log; of the rotated files the
newest containerLogMaxFiles - 1 are kept, beside the live one."""
from __future__ import annotations

import glob
import logging
import os
import time

from cri.api import CONTAINER_RUNNING, CRIError, RuntimeService

log = logging.getLogger("kubelet.logs")


class LogRotator:
    def __init__(self, runtime: RuntimeService, max_size: int, max_files: int) -> None:
        self.runtime = runtime
        self.max_size = max_size
        self.max_files = max_files

    def rotate_all(self) -> None:
        for c in self.runtime.list_containers():
            if c.state != CONTAINER_RUNNING or not c.log_path:
                continue
            try:
                if os.stat(c.log_path).st_size > self.max_size:
                    self.rotate(c.id, c.log_path)
            except FileNotFoundError:
                continue
            except (OSError, CRIError) as e:
                log.warning("rotating the log of container %s: %s", c.id, e)

    def rotate(self, container_id: str, path: str) -> None:
        self._remove_excess(path, self.max_files - 2)   # room for the one rotated now
        rotated = f"{path}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        n = 0
        while os.path.exists(rotated):     # two rotations within a second
            n += 1
            rotated = f"{path}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.{n}"
        os.rename(path, rotated)
        try:
            self.runtime.reopen_container_log(container_id)
        except CRIError:
            os.rename(rotated, path)        # the shim still writes the old file: keep its name
            raise

    def _remove_excess(self, path: str, keep: int) -> None:
        rotated = sorted(glob.glob(glob.escape(path) + ".*"))
        for old in rotated[:max(len(rotated) - keep, 0)]:
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
