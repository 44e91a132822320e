"""The brick schema: the one source of truth for a brick.

A schema file in `schemas/` is parsed into `BrickSpec`. The pydantic model *is*
the meta-schema: unknown keys, wrong types and inconsistent values are refused
with the file's path and the reason. The MCP tool, the Builder's tool text and
its decoding grammar are all rendered from a `BrickSpec`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SchemaError
from .types import IMAGE_TYPES, TYPES, OutputTypeName, TypeName

__all__ = ["IMAGE_TYPES", "BrickSpec", "Output", "Param", "load_spec", "parse_spec"]

_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    """One input of a brick."""

    name: str = Field(pattern=_NAME)
    type: TypeName
    description: str | None = Field(None, min_length=1, description="needed unless an Image or Mask says it all")
    required: bool = True
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None

    @property
    def bounds(self) -> str | None:
        """'0.2 to 5.0' ('-inf' or 'inf' for an open end), or None when unbounded."""
        if self.minimum is None and self.maximum is None:
            return None
        return f"{_bound(self.minimum, '-inf')} to {_bound(self.maximum, 'inf')}"

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.required and self.default is not None:
            raise ValueError(f"input '{self.name}' is required and also has a default")
        kind = TYPES[self.type]
        if self.description is None and not kind.image:
            raise ValueError(f"input '{self.name}': a {self.type} input needs a description")
        if (self.minimum is not None or self.maximum is not None) and not kind.numeric:
            raise ValueError(f"input '{self.name}': minimum/maximum only apply to {_names(lambda t: t.numeric)}")
        if self.enum is not None and kind.json != "string":
            raise ValueError(f"input '{self.name}': enum only applies to {_names(lambda t: t.json == 'string')}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"input '{self.name}': minimum is above maximum")
        if self.default is not None:
            _check_default(self)
        return self


def _bound(value: float | None, missing: str) -> str:
    return missing if value is None else str(value)


def _names(which) -> str:  # noqa: ANN001 - a predicate on ValueType
    return " and ".join(name for name, t in TYPES.items() if which(t))


def _check_default(p: Param) -> None:
    kind = TYPES[p.type]
    if kind.image or not kind.accepts(p.default):
        raise ValueError(f"input '{p.name}': default {p.default!r} is not a {p.type}")
    if p.minimum is not None and p.default < p.minimum or p.maximum is not None and p.default > p.maximum:
        raise ValueError(f"input '{p.name}': default {p.default!r} is out of range")
    if p.enum is not None and p.default not in p.enum:
        raise ValueError(f"input '{p.name}': default {p.default!r} is not one of its enum")


class Output(_Strict):
    """One output of a brick. `optional` outputs may be absent from a result; with `when_given`
    (an input of the brick's `input_sets`), exactly when that input is not given."""

    name: str = Field(pattern=_NAME)
    type: OutputTypeName
    description: str | None = Field(None, min_length=1)
    optional: bool = False
    when_given: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Output:
        if self.when_given is not None and not self.optional:
            raise ValueError(f"output '{self.name}': when_given needs optional: true")
        return self


class Annotations(_Strict):
    """MCP tool annotations (hints for hosts), camelCase as on the wire."""

    title: str | None = None
    readOnlyHint: bool | None = None  # noqa: N815
    destructiveHint: bool | None = None  # noqa: N815
    idempotentHint: bool | None = None  # noqa: N815
    openWorldHint: bool | None = None  # noqa: N815


class BrickSpec(_Strict):
    """A brick: what it is called, what it takes and returns, and where its code lives."""

    name: str = Field(pattern=_NAME, description="MCP tool name")
    builder_id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$", description="id in workflows")
    kind: Literal["predict", "edit"]
    title: str | None = None
    description: str = Field(min_length=1)
    constraint: str | None = None
    notes: dict[Literal["gpu", "cpu"], str] = Field(
        default_factory=dict, description="backend -> what it can and cannot do, told only when it runs the brick"
    )
    inputs: tuple[Param, ...]
    outputs: tuple[Output, ...] = Field(min_length=1)
    same_size: bool = Field(True, description="all image and mask inputs must share one size")
    backends: dict[Literal["gpu", "cpu"], str] = Field(
        default_factory=dict, description="backend -> 'module:attribute'; empty only for composite and remote tools"
    )
    input_sets: tuple[tuple[str, ...], ...] = Field(
        (),
        description="ways to call the brick: the optional inputs named here must be given as exactly one of "
        "these sets (e.g. two masks or two images); inputs named in no set are free",
    )
    models: tuple[str, ...] = Field((), description="keys of the model configuration the gpu backend loads")
    weights: tuple[str, ...] = Field(
        (), description="bundles of trained weights the cpu backend loads (keys of bricks/cpu/weights.py)"
    )
    annotations: Annotations | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BrickSpec:
        for what, items in (("input", self.inputs), ("output", self.outputs)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {what} names in {names}")
        in_sets = {n for group in self.input_sets for n in group}
        for out in self.outputs:
            if out.when_given is not None and out.when_given not in in_sets:
                raise ValueError(f"output '{out.name}': when_given '{out.when_given}' is not an input of input_sets")
        for group in self.input_sets:
            for name in group:
                param = self.input(name)
                if param is None or param.required:
                    raise ValueError(f"input_sets: '{name}' is not an optional input")
        if len(set(map(frozenset, self.input_sets))) != len(self.input_sets) or len(self.input_sets) == 1:
            raise ValueError("input_sets: give two or more different sets")
        if set(self.notes) - set(self.backends):
            raise ValueError(f"notes: {sorted(set(self.notes) - set(self.backends))} not among the backends")
        for backend, target in self.backends.items():
            module, _, attr = target.partition(":")
            if not module or not attr:
                raise ValueError(f"backend '{backend}': impl must be 'module:attribute', got {target!r}")
        return self

    def usage(self, backend: str | None) -> str:
        """When and how to use the brick: its constraint, then the note of the backend running it."""
        return " ".join(t for t in (self.constraint, self.notes.get(backend or "")) if t)

    def input(self, name: str) -> Param | None:
        return next((p for p in self.inputs if p.name == name), None)

    def input_set_problem(self, given: set[str]) -> tuple[str, str] | None:
        """(the input to name, why) when the given inputs match none of `input_sets`, else None."""
        if not self.input_sets:
            return None
        named = [p.name for p in self.inputs if any(p.name in group for group in self.input_sets)]
        chosen = {n for n in named if n in given}
        if any(chosen == set(group) for group in self.input_sets):
            return None
        got = "(" + ", ".join(n for n in named if n in chosen) + ")" if chosen else "none"
        # name what to add to complete a set the given inputs fall short of, else what to drop
        near = min(self.input_sets, key=lambda g: (not chosen <= set(g), len(chosen ^ set(g))))
        culprit = next(n for n in named if n in chosen ^ set(near))
        return culprit, f"give exactly one of these sets of inputs: {self.input_sets_text()}; got {got}"

    def input_sets_text(self) -> str:
        """'(mask1, mask2) or (image1, image2)'; an empty set reads 'or none of them', last."""
        ways = [f"({', '.join(g)})" for g in self.input_sets if g]
        return " or ".join(ways) + (" or none of them" if () in self.input_sets else "")


def parse_spec(data: Any, source: str) -> BrickSpec:
    try:
        return BrickSpec.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise SchemaError(source, reasons) from None


def load_spec(path: Path) -> BrickSpec:
    """Read and validate one schema file; a bad file raises `SchemaError` naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(str(path), f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(str(path), f"not valid JSON: {exc}") from None
    spec = parse_spec(data, str(path))
    if not spec.backends:
        raise SchemaError(str(path), "backends: a schema file names at least one backend ('cpu' or 'gpu')")
    return spec
