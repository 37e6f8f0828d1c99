"""The overlay package's error: one line naming the image, blob, layer entry or field at fault."""
from __future__ import annotations


class ImageError(ValueError):
    """Bad or unusable image input (reference, manifest, blob, layer, archive, registry answer).

    A ValueError so that callers that already report ValueErrors as one line (the runtime's CLI)
    report these too.
    """
