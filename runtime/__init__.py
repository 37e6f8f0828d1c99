"""The OCI runtime and the `pycontainer` command line (runc's verbs and flags)."""

VERSION = "0.1.0"
