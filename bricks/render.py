"""Renderings of a `BrickSpec` for MCP: the tool's input and output JSON Schemas."""

from __future__ import annotations

from typing import Any

from .spec import BrickSpec, Output, Param

_REF_HINT = {"Image": "image reference", "Mask": "mask reference, 255 = selected"}  # the forms: the server's instructions
_JSON_TYPE = {"Str": "string", "Float": "number", "Int": "integer", "Bool": "boolean"}


def input_schema(spec: BrickSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {p.name: _param(p) for p in spec.inputs},
        "required": [p.name for p in spec.inputs if p.required],
        "additionalProperties": False,
    }


def _param(p: Param) -> dict[str, Any]:
    if p.type in _REF_HINT:
        return {"type": "string", "description": f"{p.description} ({_REF_HINT[p.type]})"}
    out: dict[str, Any] = {"type": _JSON_TYPE[p.type], "description": p.description}
    if p.enum is not None:
        out["enum"] = list(p.enum)
    if p.minimum is not None:
        out["minimum"] = p.minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
    if p.default is not None:
        out["default"] = p.default
    return out


IMAGE_RESULT_SCHEMA: dict[str, Any] = {  # also width, height and (with an output directory) path
    "type": "object",
    "properties": {"uri": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}},
    "required": ["uri"],
}


def output_schema(spec: BrickSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {o.name: _output(o) for o in spec.outputs},
        "required": [o.name for o in spec.outputs if not o.optional],
    }


def _output(o: Output) -> dict[str, Any]:
    if o.type in ("Image", "Mask"):
        return {**IMAGE_RESULT_SCHEMA, "description": o.description}
    return {"type": _JSON_TYPE[o.type], "description": o.description}
