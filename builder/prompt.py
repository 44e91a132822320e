"""The Builder's prompt, rendered from the registry in the layout of the Lego-Edit paper.

Role, rules, the value types, the PREDICT and EDIT model lists (each with Input / Output /
Constraint lines), worked examples, then the instruction. Only available bricks are listed,
and only examples whose bricks are all available. A template file can replace the built-in
text; it may use $types, $predict_models, $edit_models, $examples and $instruction (the
released checkpoint's own prompt marks the instruction `YourInstruction`, which works too).
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from bricks import Registry
from bricks.spec import BrickSpec
from bricks.types import TYPES

USER_MASK_NOTE = "The user gave a mask. "
USER_IMAGES_NOTE = "The user gave more images: {names}. "
_NOTES = re.compile(r"^(?:The user gave a mask\. )?(?:The user gave more images: [^.]*\. )?")


@dataclass(frozen=True)
class Example:
    instruction: str
    mask: bool
    workflow: dict[str, Any]
    source: str
    images: tuple[str, ...] = ()
    """Names of the further images the user gave (init[<name>])."""

    def bricks(self) -> set[str]:
        return {e["model"] for e in self.workflow["pipeline"] if "model" in e}


def load_examples() -> list[Example]:
    root = importlib.resources.files("builder") / "examples"
    examples = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            examples.append(Example(data["instruction"], data["mask"], data["workflow"], entry.name, tuple(data.get("images", ()))))
    return examples


def instruction_text(instruction: str, has_mask: bool, images: tuple[str, ...] | list[str] = ()) -> str:
    """The instruction as the Builder sees it: a user mask and further images are announced up front."""
    notes = USER_MASK_NOTE if has_mask else ""
    if images:
        notes += USER_IMAGES_NOTE.format(names=", ".join(f"init[{name}]" for name in images))
    return notes + instruction


def bare_instruction(text: str) -> str:
    """`instruction_text` without its notes: the user's own words."""
    return _NOTES.sub("", text, count=1)


def brick_text(spec: BrickSpec, number: int, backend: str | None = None) -> str:
    """One model entry: '3.SOS (description)' then its Input / Output / Constraint lines; the
    constraint ends with the note of the backend that runs it."""
    inputs = ", ".join(f"{p.type}[{p.name}]" for p in spec.inputs)
    outputs = ", ".join(f"{o.type}[{o.name}]" for o in spec.outputs)
    lines = [f"{number}.{spec.builder_id} ({spec.description})", f"Input: {{{inputs}}}", f"Output: {{{outputs}}}"]
    constraints = [spec.usage(backend)]
    if spec.input_sets:
        constraints.append(f"Give exactly one of these sets of inputs, the others null: {spec.input_sets_text()}.")
    produced = [f"{o.name} only when {o.when_given} is given" for o in spec.outputs if o.when_given]
    if produced:
        constraints.append(f"Outputs: {'; '.join(produced)}.")
    for p in spec.inputs:
        bits = []
        if not p.required:
            bits.append("optional" + (f", default {p.default}" if p.default is not None else ", may be null"))
        if p.bounds:
            bits.append(f"range {p.bounds}")
        if p.enum:
            bits.append("one of " + ", ".join(p.enum))
        if bits:
            constraints.append(f"{p.name}: {'; '.join(bits)}.")
    lines.append("Constraint: " + (" ".join(c for c in constraints if c) or "None"))
    return "\n".join(lines)


class BuilderPrompt:
    def __init__(self, registry: Registry, template: Path | None = None):
        self.registry = registry
        self.template = Template(
            template.read_text(encoding="utf-8") if template is not None
            else (importlib.resources.files("builder") / "prompt_template.txt").read_text(encoding="utf-8")
        )
        self.examples = load_examples()

    def render(self, instruction: str) -> str:
        bricks = [(b.spec, self.registry.backend_for(b)[0]) for b in self.registry.available()]
        specs = [spec for spec, _ in bricks]
        ids = {s.builder_id for s in specs}
        used = {t for s in specs for t in [*(p.type for p in s.inputs), *(o.type for o in s.outputs)]}
        types = [t for t in TYPES if t in used]
        examples = [e for e in self.examples if e.bricks() <= ids]
        text = self.template.safe_substitute(
            types="There are only these types of input and output:\n" + "\n".join(f"{i}. {TYPES[t].prompt}" for i, t in enumerate(types, 1)),
            predict_models=self._models(bricks, "predict"),
            edit_models=self._models(bricks, "edit"),
            examples="".join(self._example(i, e) for i, e in enumerate(examples, 1)),
            instruction=instruction,
        )
        return text.replace("YourInstruction", instruction)

    @staticmethod
    def _models(bricks: list[tuple[BrickSpec, str | None]], kind: str) -> str:
        chosen = [(s, backend) for s, backend in bricks if s.kind == kind]
        return "\n".join(brick_text(s, i, backend) for i, (s, backend) in enumerate(chosen, 1)) or "(none available)"

    @staticmethod
    def _example(number: int, example: Example) -> str:
        body = json.dumps({**example.workflow, "process": instruction_text(example.instruction, example.mask, example.images)}, indent=2, ensure_ascii=False)
        return f"\n**Example {number}:**\nUser instruction: {instruction_text(example.instruction, example.mask, example.images)}\nExpected output:\n{body}\n"
