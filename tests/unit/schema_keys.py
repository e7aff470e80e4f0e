"""Walk the config schema into (key path, type, required, default) rows, as docs/configuration.md lists them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MISSING = object()


def schema_rows(schema: dict[str, Any]) -> Iterator[tuple[str, str, bool, Any]]:
    """Yield one row per key: ``listen[].port``, ``realms[].roles.<role>.allow[].uri``, ..."""
    yield from _walk(schema, schema, "")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        merged = {k: v for k, v in node.items() if k != "$ref"}
        node = {**schema["$defs"][name], **merged}
    return node


def _type_of(node: dict[str, Any]) -> str:
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    kind = node.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _walk(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, bool, Any]]:
    node = _resolve(schema, node)
    required = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        child = _resolve(schema, child)
        path = f"{prefix}.{key}" if prefix else key
        yield path, _type_of(child), key in required, child.get("default", MISSING)
        kind = child.get("type")
        if kind == "object" or (isinstance(kind, list) and "object" in kind):
            if "properties" in child:
                yield from _walk(schema, child, path)
            elif isinstance(child.get("additionalProperties"), dict):
                values = _resolve(schema, child["additionalProperties"])
                if "properties" in values:
                    yield from _walk(schema, values, f"{path}.<role>")
                else:  # a map of plain values: one row for its values
                    key = f"{path}.{values.get('x-key', '<key>')}"
                    yield key, _type_of(values), False, values.get("default", MISSING)
        if child.get("type") == "array" and isinstance(child.get("items"), dict):
            items = _resolve(schema, child["items"])
            if "properties" in items:
                yield from _walk(schema, items, f"{path}[]")
