"""Per-resource rules (strategies) and the generic store that applies them over storage."""
