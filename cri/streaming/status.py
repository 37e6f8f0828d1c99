"""How an exec or attach ended, as the kubelet reports it on the error stream: a metav1.Status
in JSON from protocol v4 on, the Status's message as plain text before (nothing on success)."""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    command: tuple[str, ...]      # empty for attach
    exit_code: int | None = None  # None: attach, or the command did not run
    error: str = ""               # a StreamError's message

    def status(self) -> dict:
        """The metav1.Status, its keys in Go's field order (kubectl reads it with a decoder
        that does not care, but other clients compare bytes)."""
        if self.error:
            # apierrors.NewInternalError around the kubelet's own wrapping of the error.
            action = "executing command in container" if self.command else "attaching to container"
            cause = f"error {action}: {self.error}"
            return {"metadata": {}, "status": "Failure",
                    "message": f"Internal error occurred: {cause}", "reason": "InternalError",
                    "details": {"causes": [{"message": cause}]}, "code": 500}
        if self.exit_code:
            # The text of the CRI runtime's exit error (%v of the command: Go's [a b c]).
            command = "[" + " ".join(self.command) + "]"
            return {"metadata": {}, "status": "Failure",
                    "message": "command terminated with non-zero exit code: error executing "
                               f"command {command}, exit code {self.exit_code}",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(self.exit_code)}]}}
        return {"metadata": {}, "status": "Success"}

    def json(self) -> bytes:
        return json.dumps(self.status(), separators=(",", ":")).encode()

    def text(self) -> bytes:
        """Protocols before v4: the message of a failure, nothing for success."""
        status = self.status()
        return status["message"].encode() if status["status"] != "Success" else b""
