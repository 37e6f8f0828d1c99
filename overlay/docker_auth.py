"""Registry credentials from a docker config.json (`docker login` writes them): the file named
by the caller, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. Only the inline
"auth" (base64 user:password) and "username"/"password" forms; credential helpers are not run."""
from __future__ import annotations

import base64
import binascii
import json
import os

from overlay.errors import ImageError
from overlay.reference import DOCKER_HUB

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                    "registry-1.docker.io")


def config_path(auth_file: str | None = None) -> str:
    if auth_file:
        return auth_file
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def lookup(registry: str, auth_file: str | None = None) -> tuple[str, str] | None:
    """(user, password) for `registry` (host[:port] as in the image reference), or None."""
    path = config_path(auth_file)
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        if auth_file:
            raise ImageError(f"--authfile {auth_file}: no such file") from None
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ImageError(f"{path}: not JSON: {e}") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = _DOCKER_HUB_KEYS if registry == DOCKER_HUB else (registry,)
    for key, entry in auths.items():
        if _host_of(key) in wanted or key in wanted:
            return _credentials(entry, f"{path}: auths.{key}")
    return None


def _host_of(key: str) -> str:
    """"https://host:5000/v1/" -> "host:5000"."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _credentials(entry: object, what: str) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        raise ImageError(f"{what}: must be an object")
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode() \
                .partition(":")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise ImageError(f"{what}.auth: not base64 of user:password") from None
        if not sep:
            raise ImageError(f"{what}.auth: not base64 of user:password")
        return user, password
    if entry.get("username"):
        return str(entry["username"]), str(entry.get("password", ""))
    return None
