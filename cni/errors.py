"""CNI error codes (spec section 5, "Error") and the exception that carries one."""
from __future__ import annotations

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
LIMITED_CONNECTIVITY = 51
# Codes from 100 on are for plugins; 999 is what libcni-based plugins use for "internal".
INTERNAL = 999


class CNIError(Exception):
    """An error as a plugin reports it: code, short msg, longer details."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict:
        out = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        text = f"CNI error {self.code}: {self.msg}"
        return f"{text} ({self.details})" if self.details else text


def invalid_config(msg: str, details: str = "") -> CNIError:
    return CNIError(INVALID_CONFIG, msg, details)
