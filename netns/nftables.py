"""nftables through libnftables (the library behind `nft`), loaded with ctypes: no exec per
command, and a whole table goes in as one atomic transaction."""
from __future__ import annotations

import ctypes

LIBRARY = "libnftables.so.1"


class NftError(OSError):
    pass


class Nft:
    """One libnftables context. Not shared between threads."""

    __slots__ = ("_lib", "_ctx")

    def __init__(self) -> None:
        lib = ctypes.CDLL(LIBRARY)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error", "nft_ctx_free"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
        for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        self.close()

    def run(self, commands: str) -> str:
        """Runs nft commands (the `nft -f` syntax); returns their output, NftError on failure."""
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
        out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
        if rc != 0:
            err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode().strip()
            raise NftError(err.splitlines()[0] if err else f"nft failed: {commands[:80]}")
        return out

    def tables(self) -> list[tuple[str, str]]:
        """(family, name) of every table on the host."""
        # Lines of "table <family> <name>": the text output, which asks no JSON of either side.
        return [tuple(line.split()[1:3]) for line in self.run("list tables").splitlines()
                if line.startswith("table ")]


def available() -> bool:
    try:
        ctypes.CDLL(LIBRARY)
    except OSError:
        return False
    return True
