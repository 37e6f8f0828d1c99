"""A component's --config file (KubeletConfiguration, KubeProxyConfiguration): YAML, read with
one line naming the file when it cannot be read or parsed."""
from __future__ import annotations

from typing import Callable

import yaml


def read_config_file(path: str, error: Callable[[str], Exception]) -> object:
    """The file's YAML document; `error(message)` is raised when there is none."""
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise error(f"--config: cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise error(f"--config: {path} is not YAML: {str(e).splitlines()[0]}") from None
