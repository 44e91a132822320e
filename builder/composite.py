"""Composite tools: a workflow of registered bricks, with typed inputs, run as one tool.

A composite runs no code of its own. Its steps are written in the workflow format, with its
inputs as `init[<input>]`; its outputs name step outputs (`{"image": "step2[image]"}`), whose
types and descriptions it takes over. It is validated like any workflow when registered, and
it runs through `Registry.call` step by step, like a workflow does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from bricks import BrickFailed, InvalidInput, Registry
from bricks.context import ProgressCallback
from bricks.spec import IMAGE_TYPES, BrickSpec, Output, Param, parse_spec

from .executor import StepFailed, execute, store_inits
from .validate import validate_workflow
from .workflow import Ref, Workflow, WorkflowInvalid, parse_workflow

MAX_DEPTH = 4
"""Composites may use composites, this many levels deep at most."""


@dataclass(frozen=True)
class CompositeRunner:
    name: str
    workflow: Workflow
    inputs: tuple[Param, ...]
    outputs: Mapping[str, Ref]
    uses: frozenset[str]
    kind: str = "composite"

    def unavailable_reason(self, registry: Registry) -> str | None:
        for name in sorted(self.uses):
            if name not in registry:
                return f"uses '{name}', which is no longer registered"
            backend, why = registry.backend_for(registry.get(name))
            if backend is None:
                return f"uses '{name}', which cannot run here ({why})"
        return None

    async def __call__(
        self, registry: Registry, args: dict[str, Any], on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        images = {p.name: args[p.name] for p in self.inputs if p.type in IMAGE_TYPES and p.name in args}
        types = {p.name: p.type for p in self.inputs}
        # inputs not given (no default) are null for the steps, as in any workflow
        inits = {p.name: args.get(p.name, p.default) for p in self.inputs}
        inits |= await anyio.to_thread.run_sync(store_inits, registry, images, types)
        try:
            execution = await execute(self.workflow, registry, inits, on_progress=on_progress)
        except StepFailed as exc:
            if exc.invalid:
                raise InvalidInput(str(exc), brick=self.name) from None
            raise BrickFailed(self.name, str(exc)) from None
        produced = {(run.step, key): value for run in execution.steps for key, value in run.outputs.items()}
        return {name: produced.get((ref.step, ref.key)) for name, ref in self.outputs.items()}


def composite(
    registry: Registry,
    *,
    name: str,
    builder_id: str,
    description: str,
    inputs: Sequence[Param],
    pipeline: Sequence[Mapping[str, Any]],
    outputs: Mapping[str, str],
    kind: str = "edit",
    **spec_fields: Any,
) -> tuple[BrickSpec, CompositeRunner]:
    """Check a composite against the registry; its spec and runner, or `InvalidInput` saying why."""
    if not outputs:
        raise InvalidInput("name at least one output, e.g. {\"image\": \"step2[image]\"}", param="composite.outputs")
    for step in pipeline:
        if isinstance(step, Mapping) and step.get("model") in (name, builder_id):
            raise InvalidInput(f"step {step.get('step')} uses the composite itself: cycles are not allowed", param="composite.pipeline")
    refs = {}
    for key, text in outputs.items():
        ref = Ref.parse(text) if isinstance(text, str) else None
        if ref is None or ref.step is None:
            raise InvalidInput(f"output '{key}' must name a step output like 'step2[image]', got {text!r}", param="composite.outputs")
        refs[key] = ref
    try:
        workflow = parse_workflow({"process": description, "pipeline": [*pipeline, {"result": [str(r) for r in refs.values()]}]})
        absent = [p.name for p in inputs if not p.required and p.default is None]
        validate_workflow(workflow, registry, {p.name: p.type for p in inputs}, check_available=False, optional=absent)
    except WorkflowInvalid as exc:
        # a non-image output is fine for a composite; only a workflow's result must be images
        issues = [i for i in exc.issues if i.input != "result" or "lists images or masks only" not in i.reason]
        if issues:
            invalid = WorkflowInvalid(issues, exc.warnings)
            invalid.param = "composite.pipeline"
            raise invalid from None
    if not any(_output(registry, workflow, r).type in IMAGE_TYPES for r in refs.values()):
        raise InvalidInput("a composite returns at least one image or mask", param="composite.outputs")
    uses = frozenset(registry.get(step.brick).name for step in workflow.steps)
    depth = 1 + max((_depth(registry, u, {name}) for u in uses), default=0)
    if depth > MAX_DEPTH:
        raise InvalidInput(f"composites nest {depth} levels deep here; at most {MAX_DEPTH} are allowed", param="composite.pipeline")
    declared = []
    for key, ref in refs.items():
        out = _output(registry, workflow, ref)
        declared.append(Output(name=key, type=out.type, description=out.description))
    spec = parse_spec(
        {"name": name, "builder_id": builder_id, "description": description, "inputs": tuple(inputs),
         "outputs": tuple(declared), "same_size": False, "kind": kind, **spec_fields},
        f"composite '{name}'",
    )
    runner = CompositeRunner(name, workflow, tuple(inputs), refs, uses)
    return spec, runner


def _output(registry: Registry, workflow: Workflow, ref: Ref) -> Output:
    step = next(s for s in workflow.steps if s.number == ref.step)  # validated: the step exists
    return next(o for o in registry.get(step.brick).spec.outputs if o.name == ref.key)


def _depth(registry: Registry, name: str, path: set[str]) -> int:
    """How many composite levels `name` runs through; a cycle is an error."""
    if name in path:
        raise InvalidInput(f"'{name}' would call itself through other composites: cycles are not allowed", param="composite.pipeline")
    runner = registry.get(name).runner
    if not isinstance(runner, CompositeRunner):
        return 0
    return 1 + max((_depth(registry, u, path | {name}) for u in runner.uses), default=0)
