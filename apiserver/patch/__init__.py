"""The PATCH content types: JSON merge patch, JSON patch, strategic merge patch, apply."""
