"""The workflow: the upstream Lego-Edit JSON format, parsed into typed data.

    {"process": "remove the dog",
     "pipeline": [
       {"step": 1, "model": "RES", "input": {"image": "init[image]", "prompt": "dog"},
        "output": {"mask": "step1[mask]"}},
       {"step": 2, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "step1[mask]"},
        "output": {"image": "step2[image]", "score": "step2[score]"}},
       {"result": "[step2[image]]"}]}

`model` is a brick's builder id or MCP name. An input is a reference (`init[<name>]`,
`stepN[<output>]`), a literal, or null (not given). An output is `stepN[<name>]` or null
(not produced). Parsing checks the shape only; `validate.py` checks it against the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bricks.errors import InvalidInput

_REF = re.compile(r"^(?:init|step(\d+))\[([A-Za-z_][A-Za-z0-9_]*)\]$")
Literal = str | int | float | bool


@dataclass(frozen=True)
class Ref:
    """`init[key]` (step None) or `stepN[key]`."""

    step: int | None
    key: str

    @classmethod
    def parse(cls, text: str) -> Ref | None:
        m = _REF.match(text.strip())
        if m is None:
            return None
        return cls(int(m.group(1)) if m.group(1) else None, m.group(2))

    def __str__(self) -> str:
        return f"init[{self.key}]" if self.step is None else f"step{self.step}[{self.key}]"


@dataclass(frozen=True)
class Step:
    number: int
    brick: str
    inputs: Mapping[str, Ref | Literal | None]
    outputs: Mapping[str, Ref | None]


@dataclass(frozen=True)
class Workflow:
    process: str
    steps: tuple[Step, ...]
    result: tuple[Ref, ...]

    def to_json(self) -> dict[str, Any]:
        """The upstream format, every reference written out as text."""
        def text(v: Any) -> Any:
            return str(v) if isinstance(v, Ref) else v

        pipeline: list[dict[str, Any]] = [
            {
                "step": s.number,
                "model": s.brick,
                "input": {k: text(v) for k, v in s.inputs.items()},
                "output": {k: text(v) for k, v in s.outputs.items()},
            }
            for s in self.steps
        ]
        pipeline.append({"result": "[" + ", ".join(map(str, self.result)) + "]"})
        return {"process": self.process, "pipeline": pipeline}


@dataclass(frozen=True)
class Issue:
    """One problem found in a workflow: where (step, input or output key) and why."""

    reason: str
    step: int | None = None
    input: str | None = None

    def __str__(self) -> str:
        where = [f"step {self.step}" if self.step is not None else "", f"`{self.input}`" if self.input else ""]
        prefix = " ".join(w for w in where if w)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "input": self.input, "reason": self.reason}


class WorkflowInvalid(InvalidInput):
    """A workflow that cannot run; `issues` says where and why, `warnings` what is merely odd."""

    def __init__(self, issues: list[Issue], warnings: list[Issue] = ()):  # type: ignore[assignment]
        self.issues = list(issues)
        self.warnings = list(warnings)
        super().__init__("invalid workflow: " + "; ".join(map(str, self.issues)), param="workflow")

    def details(self) -> dict[str, Any]:
        return {"issues": [i.as_dict() for i in self.issues]}


MAX_STEPS = 500  # steps of one workflow: far more than any edit needs, small enough to check at once
MAX_DEPTH = 16  # nesting of the workflow's JSON: a workflow needs 4


def parse_workflow(data: str | Mapping[str, Any]) -> Workflow:
    """JSON text or a decoded object -> `Workflow`; shape problems raise `WorkflowInvalid`."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise WorkflowInvalid([Issue(f"not valid JSON: {exc}")]) from None
        except RecursionError:
            raise WorkflowInvalid([Issue(f"nested too deeply (a workflow is at most {MAX_DEPTH} levels deep)")]) from None
    if _depth(data) > MAX_DEPTH:
        raise WorkflowInvalid([Issue(f"nested too deeply (a workflow is at most {MAX_DEPTH} levels deep)")])
    if not isinstance(data, Mapping) or not isinstance(data.get("pipeline"), list):
        raise WorkflowInvalid([Issue("expected an object with a 'pipeline' list")])
    if len(data["pipeline"]) > MAX_STEPS + 1:
        raise WorkflowInvalid([Issue(f"has {len(data['pipeline']) - 1} steps; at most {MAX_STEPS} are allowed")])
    issues: list[Issue] = []
    steps: list[Step] = []
    results: list[tuple[int, Any]] = []
    for index, element in enumerate(data["pipeline"]):
        if not isinstance(element, Mapping):
            issues.append(Issue(f"pipeline element {index + 1} is not an object"))
        elif "result" in element:
            results.append((index, element["result"]))
        else:
            step = _parse_step(element, index, issues)
            if step is not None:
                steps.append(step)
    if len(results) != 1:
        issues.append(Issue(f"expected exactly one {{'result': ...}} element, found {len(results)}"))
        result: tuple[Ref, ...] = ()
    else:
        result = _parse_result(results[0][1], issues)
    process = data.get("process", "")
    if not isinstance(process, str):
        issues.append(Issue("'process' must be a string"))
    if issues:
        raise WorkflowInvalid(issues)
    return Workflow(process, tuple(steps), result)


def _parse_step(element: Mapping[str, Any], index: int, issues: list[Issue]) -> Step | None:
    number = element.get("step")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        issues.append(Issue(f"pipeline element {index + 1}: 'step' must be a positive integer, got {number!r}"))
        return None
    brick = element.get("model")
    if not isinstance(brick, str) or not brick:
        issues.append(Issue("'model' must name a brick", step=number))
        return None
    raw_inputs = element.get("input") or {}
    raw_outputs = element.get("output") or {}
    if not isinstance(raw_inputs, Mapping) or not isinstance(raw_outputs, Mapping):
        issues.append(Issue("'input' and 'output' must be objects", step=number))
        return None
    inputs: dict[str, Ref | Literal | None] = {}
    for key, value in raw_inputs.items():
        if isinstance(value, str) and (ref := Ref.parse(value)) is not None:
            inputs[key] = ref
        elif value is None or isinstance(value, str | int | float | bool):
            inputs[key] = value
        else:
            issues.append(Issue(f"unsupported value {value!r}: use a reference, a literal or null", number, key))
    outputs: dict[str, Ref | None] = {}
    for key, value in raw_outputs.items():
        ref = Ref.parse(value) if isinstance(value, str) else None
        if value is not None and (ref is None or ref.step != number or ref.key != key):
            issues.append(Issue(f"output must be 'step{number}[{key}]' or null, got {value!r}", number, key))
        outputs[key] = ref
    return Step(number, brick, inputs, outputs)


def _parse_result(value: Any, issues: list[Issue]) -> tuple[Ref, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]") and not Ref.parse(text):
            text = text[1:-1]
        items = [t for t in (part.strip() for part in text.split(",")) if t]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        issues.append(Issue(f"'result' must be a string like '[step2[image]]' or a list of references, got {value!r}"))
        return ()
    refs = []
    for item in items:
        ref = Ref.parse(item)
        if ref is None:
            issues.append(Issue(f"result item {item!r} is not a reference like step2[image]"))
        else:
            refs.append(ref)
    if not refs and not any("result" in i.reason for i in issues):
        issues.append(Issue("the result is empty: name at least one image, e.g. [step2[image]]"))
    return tuple(refs)


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion (a hostile value may be very deep)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, Mapping | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, Mapping) else item))
    return deepest
