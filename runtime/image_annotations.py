"""The annotations that mark a container made by `run --image`: `delete` reads them to remove its
snapshot, without importing the image code for every other container."""
from __future__ import annotations

IMAGE_ROOT = "org.pycontainer.image.root"
IMAGE_NAME = "org.pycontainer.image.name"
