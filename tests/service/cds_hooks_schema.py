"""The CDS Hooks 2.0 response and discovery schemas, written from the specification's tables
(https://cds-hooks.org/specification/current/, "CDS Service Response", "Card Attributes",
"Source", "Suggestion", "Action", "Link", "Coding", "Discovery"): REQUIRED fields required, the
allowed values enumerated, ``summary`` under 140 characters, and the CONDITIONAL rules
(``selectionBehavior`` with ``suggestions``, ``resource`` for create/update). ``extension`` is
the spec's reserved member; other members are allowed, as the spec does not forbid them.
"""

from __future__ import annotations

CODING = {
    "type": "object", "required": ["code"],
    "properties": {"code": {"type": "string"}, "system": {"type": "string"}, "display": {"type": "string"}},
}
URL = {"type": "string", "pattern": "^https?://"}
ACTION = {
    "type": "object", "required": ["type", "description"],
    "properties": {
        "type": {"enum": ["create", "update", "delete"]}, "description": {"type": "string"},
        "resource": {"type": "object", "required": ["resourceType"]}, "resourceId": {"type": "string"},
    },
    "allOf": [{"if": {"properties": {"type": {"enum": ["create", "update"]}}}, "then": {"required": ["resource"]}}],
}
SUGGESTION = {
    "type": "object", "required": ["label"],
    "properties": {"label": {"type": "string"}, "uuid": {"type": "string"}, "isRecommended": {"type": "boolean"},
                   "actions": {"type": "array", "items": ACTION}},
}
LINK = {
    "type": "object", "required": ["label", "url", "type"],
    "properties": {"label": {"type": "string"}, "url": URL, "type": {"enum": ["absolute", "smart"]},
                   "appContext": {"type": "string"}, "autolaunchable": {"type": "boolean"}},
}
SOURCE = {
    "type": "object", "required": ["label"],
    "properties": {"label": {"type": "string"}, "url": URL, "icon": URL, "topic": CODING},
}
CARD = {
    "type": "object", "required": ["summary", "indicator", "source"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 139},
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": SOURCE,
        "suggestions": {"type": "array", "items": SUGGESTION},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": {**CODING, "required": ["code", "display"]}},
        "links": {"type": "array", "items": LINK},
        "extension": {"type": "object"},
    },
    "dependentRequired": {"suggestions": ["selectionBehavior"]},
}
RESPONSE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["cards"],
    "properties": {"cards": {"type": "array", "items": CARD}, "systemActions": {"type": "array", "items": ACTION}},
}
DISCOVERY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["services"],
    "properties": {"services": {"type": "array", "items": {
        "type": "object", "required": ["hook", "description", "id"],
        "properties": {"hook": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                       "id": {"type": "string", "pattern": "^[A-Za-z0-9._~-]+$"},
                       "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                       "usageRequirements": {"type": "string"}}}}},
}


def check(schema: dict, instance: object) -> None:
    """Raise jsonschema's ValidationError when ``instance`` does not fit ``schema``."""
    import jsonschema

    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(instance)
