"""The JSON Schema (draft 2020-12) of a workflow in the upstream format, rendered from brick specs.

Two uses: the MCP resource `lego://workflow/schema` (`inits=None`: the general format, with
descriptions an agent can write workflows from) and guided decoding on an OpenAI-compatible
endpoint (`inits` given: only the initial inputs this request has). It accepts what the
validator may accept: optional inputs may be null or left out, outputs may be left out. A
schema cannot say "refer only to earlier steps" or "exactly one result, last"; `validate.py`
checks those. A brick with input sets gets one step schema per set. References are narrowed by
type: a Mask input only accepts `stepN[k]` where some brick has a Mask output `k`.

Kept portable (OpenAI structured outputs, vLLM's xgrammar and guidance backends, llguidance):
`anyOf`, not `oneOf` (llguidance and OpenAI's strict mode refuse `oneOf`; the `model` const
tells the alternatives apart anyway); no `$ref`, no `contains`; regexes with plain groups and
`[0-9]`. Strings are bounded by a pattern that also shuts out raw control characters: xgrammar
lets those into strings (invalid JSON) and ignores `maxLength` beside a `pattern`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bricks.spec import IMAGE_TYPES, BrickSpec, Param
from bricks.types import TYPES, compatible


_KEY = "[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(f"^{_KEY}$")
STR_MAX = 200
_PROCESS_MAX = 1000

REFERENCES = (
    "A value is a literal, null (not given), or a reference to an image or value: "
    "'init[image]' is the user's image, 'init[mask]' the user's mask when one was given, "
    "'init[<name>]' any other initial input; 'stepN[key]' is output `key` of step N, which must "
    "come earlier. A Mask may feed an Image input and an Int a Float input; other types must match."
)


def workflow_json_schema(bricks: Sequence[BrickSpec], inits: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The schema of `{"process": ..., "pipeline": [step..., {"result": ...}]}` for these bricks.

    `inits` maps each name usable as `init[<name>]` to its type ("Image" or "Mask"); None
    allows any name (the general format).
    """
    refs = _References(bricks, inits)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Lego-Edit workflow",
        "description": "An image edit as a pipeline of brick calls, in Lego-Edit's format. " + REFERENCES,
        "type": "object",
        "properties": {
            "process": {"type": "string", "description": "The user's instruction.", **_text(_PROCESS_MAX)},
            "pipeline": {
                "type": "array",
                "description": "The steps, numbered 1, 2, ... in order, then one final {\"result\": ...} element.",
                "minItems": 2,
                "items": {"anyOf": [*(step for spec in bricks for step in _steps(spec, refs)), _result(refs)]},
            },
        },
        "required": ["process", "pipeline"],
        "additionalProperties": False,
    }


class _References:
    """Reference regexes by target type, from the outputs the bricks have and the initial inputs."""

    def __init__(self, bricks: Sequence[BrickSpec], inits: Mapping[str, str] | None):
        self.outputs = [(o.name, o.type) for spec in bricks for o in spec.outputs]
        self.inits = None if inits is None else [(n, t) for n, t in inits.items() if _NAME.match(n)]

    def alternatives(self, types: Sequence[str]) -> str | None:
        """`init[...]|stepN[...]` for keys whose type may feed one of `types`; None if there are none."""
        def keys(pairs: list[tuple[str, str]]) -> str:
            names = sorted({n for n, t in pairs if any(compatible(t, want) for want in types)})
            return "|".join(names)

        if self.inits is None:  # any name, but initial inputs are images or masks
            init = _KEY if any(t in IMAGE_TYPES for t in types) else ""
        else:
            init = keys(self.inits)
        step = keys(self.outputs)
        parts = [f"init\\[({init})\\]" if init else "", f"step[0-9]+\\[({step})\\]" if step else ""]
        return "|".join(p for p in parts if p) or None

    def any_of(self, types: Sequence[str]) -> str:
        """A reference of a type that fits; any well-formed one if none does (the validator explains)."""
        return self.alternatives(types) or f"init\\[{_KEY}\\]|step[0-9]+\\[{_KEY}\\]"


def _text(limit: int) -> dict[str, str]:
    return {"pattern": f"^[^\\x00-\\x1f]{{0,{limit}}}$"}


def _steps(spec: BrickSpec, refs: _References) -> list[dict[str, Any]]:
    """One step schema, or one per input set: its inputs given, the other sets' inputs and the
    outputs they would produce null."""
    return [_step(spec, refs, group) for group in spec.input_sets or (None,)]


def _step(spec: BrickSpec, refs: _References, group: tuple[str, ...] | None) -> dict[str, Any]:
    in_sets = {n for g in spec.input_sets for n in g}
    off = set() if group is None else in_sets - set(group)  # the other sets' inputs: null here
    null = {"type": "null"}
    outputs = {}
    for o in spec.outputs:
        ref = {"type": "string", "pattern": f"^step[0-9]+\\[{o.name}\\]$"}
        value = null if o.when_given in off else {"anyOf": [ref, null]}
        described = f"{o.type}: {_sentence(o.description)}'step<N>[{o.name}]' with this step's number, or null if unused."
        outputs[o.name] = {"description": described, **value}
    inputs = {
        p.name: {"description": "Not given with this set of inputs.", **null} if p.name in off else _input(p, refs, group)
        for p in spec.inputs
    }
    required = [p.name for p in spec.inputs if p.required or (group is not None and p.name in group)]
    title = spec.builder_id
    if group is not None:
        title += f" with ({', '.join(group)})" if group else f" with none of ({', '.join(sorted(in_sets))})"
    return {
        "title": title,
        "description": f"{spec.kind} brick {spec.builder_id} ({spec.name}): {spec.description}"
        + (f" Constraint: {spec.constraint}" if spec.constraint else ""),
        "type": "object",
        "properties": {
            "step": {"type": "integer", "minimum": 1},
            "model": {"type": "string", "const": spec.builder_id},
            "input": _object(inputs, required),
            "output": _object(outputs, []),
        },
        "required": ["step", "model", "input", "output"],
        "additionalProperties": False,
    }


def _result(refs: _References) -> dict[str, Any]:
    ref = f"({refs.any_of(IMAGE_TYPES)})"
    return {
        "title": "result",
        "description": "The last element: the images to return, e.g. '[step2[image]]' or '[step1[image], step3[image]]'.",
        "type": "object",
        "properties": {"result": {"type": "string", "pattern": f"^\\[{ref}(, ?{ref})*\\]$"}},
        "required": ["result"],
        "additionalProperties": False,
    }


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _input(p: Param, refs: _References, group: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A literal of the input's type or a reference of a type that may feed it; null when optional
    (and not part of the chosen input set `group`)."""
    kind = TYPES[p.type]
    if kind.image:
        options = [{"type": "string", "pattern": f"^({refs.any_of([p.type])})$"}]
    elif kind.json == "string" and p.enum is None:
        options = [{"type": "string", **_text(STR_MAX)}]  # a string reference is a string too
    else:
        literal: dict[str, Any] = {"type": kind.json, **({"enum": list(p.enum)} if p.enum is not None else {})}
        if p.minimum is not None:
            literal["minimum"] = p.minimum
        if p.maximum is not None:
            literal["maximum"] = p.maximum
        options = [literal]
        if (alternatives := refs.alternatives([p.type])) is not None:
            options.append({"type": "string", "pattern": f"^({alternatives})$"})
    if not p.required and not (group and p.name in group):
        options.append({"type": "null"})
    description = (f"{p.type}: {_sentence(p.description)}" + (f"Null means {p.default!r}." if p.default is not None else "")).rstrip()
    return {"description": description, **options[0]} if len(options) == 1 else {"description": description, "anyOf": options}


def _sentence(text: str | None) -> str:
    """A description followed by a space, or nothing."""
    return f"{text} " if text else ""
