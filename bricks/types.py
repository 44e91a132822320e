"""The value types of brick inputs and outputs, each declared once.

Everything that depends on a type reads it here: the schema model (which names exist, which
take defaults or ranges), the MCP tool schemas and the workflow JSON Schema (`json`), the
decoding grammar (by `json` kind), the Builder's prompt (`prompt`), the workflow validator
(`accepts`, `feeds`), the registry (`coerce`) and the CLI (`from_text`). Adding a type is
adding an entry to `TYPES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ValueType:
    name: str
    json: str | None
    """The JSON Schema type of its values on the wire; None for images and masks, which travel
    as references (a stored image's URI, a file path, a data URI)."""
    prompt: str
    """How the Builder's prompt lists it."""
    expects: str
    """What a literal must be, for error messages ("a string", "true or false")."""
    accepts: Callable[[Any], bool]
    """Whether a JSON value is a literal of this type (in a workflow, or as a default)."""
    from_text: Callable[[str], Any]
    """The value a command-line `key=value` means; raises ValueError or KeyError if none."""
    coerce: Callable[[Any], Any] = lambda value: value
    """A checked wire value as the brick receives it."""
    feeds: tuple[str, ...] = ()
    """The other types whose inputs its values may fill."""
    output: bool = True
    """Whether a brick may return it."""

    @property
    def image(self) -> bool:
        return self.json is None

    @property
    def numeric(self) -> bool:
        return self.json in ("number", "integer")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_BOOLS = {"true": True, "false": False, "1": True, "0": False}

TYPES: dict[str, ValueType] = {t.name: t for t in (
    ValueType("Image", None, "Image", "a reference or an image URI", lambda v: isinstance(v, str), str),
    ValueType("Mask", None, "Mask", "a reference or an image URI", lambda v: isinstance(v, str), str, feeds=("Image",)),
    ValueType("Str", "string", "Str (English text only)", "a string", lambda v: isinstance(v, str), str, str),
    ValueType("Float", "number", "Float", "a finite Float", _number, float, float),
    ValueType("Int", "integer", "Int", "a finite Int", lambda v: _number(v) and float(v).is_integer(), int, int,
              feeds=("Float",), output=False),
    ValueType("Bool", "boolean", "Bool", "true or false", lambda v: isinstance(v, bool), lambda s: _BOOLS[s.lower()],
              output=False),
)}  # fmt: skip

IMAGE_TYPES = tuple(name for name, t in TYPES.items() if t.image)
TypeName = Literal.__getitem__(tuple(TYPES))  # type: ignore[attr-defined]
OutputTypeName = Literal.__getitem__(tuple(name for name, t in TYPES.items() if t.output))  # type: ignore[attr-defined]


def compatible(source: str, target: str) -> bool:
    """Whether a value of type `source` may feed an input of type `target`."""
    return source == target or target in TYPES[source].feeds
