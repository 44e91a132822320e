"""Run a validated workflow: steps in dependency order, independent ones concurrently.

Values pass between steps as `lego://images/` URIs of the in-memory store, so nothing is
encoded inside a workflow. Every step goes through `Registry.call`, like an MCP tool call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from bricks import BrickFailed, InvalidInput, LegoEditError, Registry, StoredImage
from bricks.context import ProgressCallback
from bricks.images import as_image, as_mask
from bricks.refs import load_reference
from bricks.store import URI_PREFIX

from .workflow import Ref, Step, Workflow


@dataclass
class StepRun:
    step: int
    brick: str
    start: float  # seconds after the workflow started
    seconds: float
    outputs: dict[str, Any]


@dataclass
class Execution:
    results: list[Any]
    steps: list[StepRun] = field(default_factory=list)
    seconds: float = 0.0

    def timings(self) -> dict[str, float]:
        """Seconds per step ('step2 adjust') and in all ('total')."""
        steps = {f"step{r.step} {r.brick}": round(r.seconds, 4) for r in sorted(self.steps, key=lambda r: r.step)}
        return {**steps, "total": round(self.seconds, 4)}


class StepFailed(LegoEditError):
    """A step failed at run time; `invalid` tells whether its input was at fault."""

    def __init__(self, step: int, brick: str, cause: LegoEditError):
        self.step = step
        self.brick = brick
        self.invalid = isinstance(cause, InvalidInput)
        self.reason = str(cause)
        super().__init__(f"step {step} ({brick}) {'was given bad input' if self.invalid else 'failed'}: {cause}")

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "brick": self.brick, "reason": self.reason}


def store_inits(registry: Registry, inits: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, str]:
    """Decode each initial image once and put it in the store; later steps read it from memory."""
    stored = {}
    for name, ref in inits.items():
        if isinstance(ref, str) and ref.startswith(URI_PREFIX) and _stored_as(registry, ref) == types[name]:
            stored[name] = ref  # already in the store as the right kind: no decode, no re-hash
            continue
        try:
            array = load_reference(ref, store=registry.store, settings=registry.settings)
        except InvalidInput as exc:
            raise exc.located(param=name) from None
        array = as_mask(array) if types[name] == "Mask" and array.ndim == 3 else as_image(array) if types[name] == "Image" else array
        stored[name] = registry.store.put(array).uri
    return stored


def _stored_as(registry: Registry, uri: str) -> str | None:
    try:
        return "Mask" if registry.store.info(registry.store.parse_uri(uri) or "").is_mask else "Image"
    except InvalidInput:
        return None


async def execute(
    workflow: Workflow, registry: Registry, inits: Mapping[str, str], *, on_progress: ProgressCallback | None = None
) -> Execution:
    """Run `workflow` (already validated) with `inits` (name -> store URI)."""
    started = time.perf_counter()
    done = {s.number: anyio.Event() for s in workflow.steps}
    values: dict[tuple[int, str], Any] = {}
    runs: list[StepRun] = []
    total = len(workflow.steps)

    async def report(progress: float, message: str) -> None:
        if on_progress is not None:
            await on_progress(progress, total, message)

    async def run(step: Step) -> None:
        for value in step.inputs.values():
            if isinstance(value, Ref) and value.step is not None:
                await done[value.step].wait()
        brick = registry.get(step.brick).name
        try:
            args = {k: _value(v, inits, values) for k, v in step.inputs.items()}
        except KeyError as missing:
            raise StepFailed(step.number, brick, InvalidInput(f"{missing.args[0]} was not produced by its step")) from None
        finished = len(runs)

        async def nested(d: float, t: float | None, message: str | None) -> None:
            await report(finished + (d / t if t else 0), f"step {step.number} {brick}: {message or ''}".rstrip(": "))

        t0 = time.perf_counter()
        try:
            outputs = await registry.call(brick, args, on_progress=nested, addressable=False)
        except (InvalidInput, BrickFailed) as exc:
            raise StepFailed(step.number, brick, exc) from None
        runs.append(StepRun(step.number, brick, t0 - started, time.perf_counter() - t0, outputs))
        for key, value in outputs.items():
            values[(step.number, key)] = value
        done[step.number].set()
        await report(len(runs), f"step {step.number} {brick} done")

    try:
        async with anyio.create_task_group() as tg:
            for step in workflow.steps:
                tg.start_soon(run, step)
    except BaseExceptionGroup as group:  # the first failure cancels the rest; report it alone
        failures = [e for e in group.exceptions if isinstance(e, StepFailed)]
        if failures:
            raise min(failures, key=lambda e: e.step) from None
        raise
    try:
        uris = [_value(ref, inits, values) for ref in workflow.result]
    except KeyError as missing:
        ref = missing.args[0]
        raise StepFailed(ref.step, "result", InvalidInput(f"{ref} was not produced by its step")) from None
    # Only what is returned gets a content id (a client may address it); images only, by the store's check.
    results = await anyio.to_thread.run_sync(lambda: [registry.store.put(registry.store.get(registry.store.parse_uri(u))) for u in uris])
    return Execution(results, runs, time.perf_counter() - started)


def _value(value: Any, inits: Mapping[str, str], values: Mapping[tuple[int, str], Any]) -> Any:
    """A step input or result item: a literal as is, a reference as its value (images as URIs)."""
    if not isinstance(value, Ref):
        return value
    if value.step is None:
        return inits[value.key]
    if (value.step, value.key) not in values:
        raise KeyError(value)
    produced = values[(value.step, value.key)]
    return produced.uri if isinstance(produced, StoredImage) else produced
