"""/openapi/v2 and /openapi/v3 (documents.py), from the type schemas in schemas.json that
generate.py writes."""
