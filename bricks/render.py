"""Renderings of a `BrickSpec` for MCP: the tool's input and output JSON Schemas.

Hosts put every tool's schemas in the model's context, so they carry what a caller needs and
no more: what the reference forms are and what an image result holds is said once, in the
server's instructions; integral numbers are written as integers.
"""

from __future__ import annotations

from typing import Any

from .spec import BrickSpec, Output, Param
from .types import TYPES

IMAGE_RESULT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"uri": {"type": "string"}}}
"""Always with a uri, width and height (and with an output directory, path): the instructions say so."""


def input_schema(spec: BrickSpec) -> dict[str, Any]:
    return _object({p.name: _param(p) for p in spec.inputs}, [p.name for p in spec.inputs if p.required], closed=True)


def output_schema(spec: BrickSpec) -> dict[str, Any]:
    return _object({o.name: _output(o) for o in spec.outputs}, [o.name for o in spec.outputs if not o.optional])


def _object(properties: dict[str, Any], required: list[str], closed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    return out


def _param(p: Param) -> dict[str, Any]:
    kind = TYPES[p.type]
    if kind.image:
        hint = f"{p.type.lower()} reference"  # what a reference is: the server's instructions
        return {"type": "string", "description": f"{p.description} ({hint})" if p.description else hint.capitalize()}
    out: dict[str, Any] = {"type": kind.json, "description": p.description}
    if p.enum is not None:
        out["enum"] = list(p.enum)
    for key in ("minimum", "maximum", "default"):
        value = getattr(p, key)
        if value is not None:
            out[key] = _number(value)
    return out


def _output(o: Output) -> dict[str, Any]:
    kind = TYPES[o.type]
    out = dict(IMAGE_RESULT_SCHEMA) if kind.image else {"type": kind.json}
    if o.description:
        out["description"] = o.description
    return out


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value
