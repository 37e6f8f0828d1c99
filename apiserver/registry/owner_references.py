"""metadata.ownerReferences as apimachinery's ValidateOwnerReferences checks them (its field
paths carry no index: `metadata.ownerReferences.uid`)."""
from __future__ import annotations

from kubeapi import field_value
from kubeapi.status import invalid_value

PATH = "metadata.ownerReferences"


def validate(refs: object) -> list[dict]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [invalid_value(PATH, refs, "must be a list of owner references")]
    errors = []
    first_controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            errors.append(invalid_value(PATH, ref, "must be an owner reference"))
            continue
        version = str(ref.get("apiVersion") or "").rpartition("/")[2]
        for field, value, detail in (("apiVersion", version, "version must not be empty"),
                                     ("kind", ref.get("kind"), "kind must not be empty"),
                                     ("name", ref.get("name"), "name must not be empty"),
                                     ("uid", ref.get("uid"), "uid must not be empty")):
            if not value:
                shown = ref.get(field) or ""
                errors.append(invalid_value(f"{PATH}.{field}", shown, detail))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errors.append({"type": "FieldValueInvalid", "field": PATH,
                               "message": f"Invalid value: {field_value.owner_references(refs)}: "
                               "Only one reference can have Controller set to true. Found "
                               f"\"true\" in references for {first_controller} and {current}"})
            else:
                first_controller = current
    return errors
