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
import anyio.from_thread
import anyio.to_thread

from bricks import BrickFailed, InvalidInput, LegoEditError, Registry, StoredImage
from bricks.context import ProgressCallback
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
    inits: dict[str, str] = field(default_factory=dict)
    """The initial images it ran on, as stored URIs (name -> URI)."""

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

    def details(self) -> dict[str, Any]:
        return {"step": self.step, "brick": self.brick, "reason": self.reason}


def store_inits(registry: Registry, inits: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, str]:
    """Decode each initial image once and put it in the store; later steps read it from memory."""
    stored = {}
    for name, ref in inits.items():
        ref = ref.uri if isinstance(ref, StoredImage) else ref  # a composite's input, from an earlier step
        if isinstance(ref, str) and ref.startswith(URI_PREFIX) and _stored_as(registry, ref) == types[name]:
            stored[name] = ref  # already in the store as the right kind: no decode, no re-hash
            continue
        stored[name] = registry.store.put(registry.resolve(ref, types[name], param=name)).uri
    return stored


def _stored_as(registry: Registry, uri: str) -> str | None:
    try:
        return "Mask" if registry.store.info(registry.store.parse_uri(uri) or "").is_mask else "Image"
    except InvalidInput:
        return None


async def execute(
    workflow: Workflow, registry: Registry, inits: Mapping[str, str], *, on_progress: ProgressCallback | None = None
) -> Execution:
    """Run `workflow` (already validated) with `inits` (name -> store URI).

    Steps run as chains (see `_chains`): a chain's steps one after the other in one worker
    thread, separate chains concurrently. The images the workflow returns get content ids in
    the step that makes them; the other step outputs are never shown, so they get random ids.
    """
    started = time.perf_counter()
    done = {s.number: anyio.Event() for s in workflow.steps}
    values: dict[tuple[int, str], Any] = {}
    runs: list[StepRun] = []
    total = len(workflow.steps)
    returned = {(r.step, r.key) for r in workflow.result if r.step is not None}

    async def report(progress: float, message: str) -> None:
        if on_progress is not None:
            await on_progress(progress, total, message)

    def begin(step: Step) -> tuple[str, dict[str, Any], frozenset[str], ProgressCallback]:
        brick = registry.get(step.brick).name
        try:
            args = {k: _value(v, inits, values) for k, v in step.inputs.items()}
        except KeyError as missing:
            raise StepFailed(step.number, brick, InvalidInput(f"{missing.args[0]} was not produced by its step")) from None
        finished = len(runs)

        async def nested(d: float, t: float | None, message: str | None) -> None:
            await report(finished + (d / t if t else 0), f"step {step.number} {brick}: {message or ''}".rstrip(": "))

        return brick, args, frozenset(key for n, key in returned if n == step.number), nested

    def finish(step: Step, brick: str, t0: float, outputs: dict[str, Any]) -> None:
        runs.append(StepRun(step.number, brick, t0 - started, time.perf_counter() - t0, outputs))
        for key, value in outputs.items():
            values[(step.number, key)] = value

    def run_here(chain: list[Step]) -> None:
        """A chain of code bricks, in this worker thread."""
        for step in chain:
            anyio.from_thread.check_cancelled()
            brick, args, hashed, nested = begin(step)
            t0 = time.perf_counter()
            try:
                outputs = registry.call_here(brick, args, on_progress=nested, addressable=hashed)
            except (InvalidInput, BrickFailed) as exc:
                raise StepFailed(step.number, brick, exc) from None
            finish(step, brick, t0, outputs)
            if on_progress is not None:
                anyio.from_thread.run(report, len(runs), f"step {step.number} {brick} done")

    async def run(chain: list[Step]) -> None:
        for value in chain[0].inputs.values():
            if isinstance(value, Ref) and value.step is not None:
                await done[value.step].wait()
        if len(chain) > 1 or registry.get(chain[0].brick).runner is None:
            await anyio.to_thread.run_sync(run_here, chain)
        else:  # a composite or remote tool: its runner is a coroutine
            step = chain[0]
            brick, args, hashed, nested = begin(step)
            t0 = time.perf_counter()
            try:
                outputs = await registry.call(brick, args, on_progress=nested, addressable=hashed)
            except (InvalidInput, BrickFailed) as exc:
                raise StepFailed(step.number, brick, exc) from None
            finish(step, brick, t0, outputs)
            await report(len(runs), f"step {step.number} {brick} done")
        for step in chain:
            done[step.number].set()

    try:
        async with anyio.create_task_group() as tg:
            for chain in _chains(workflow, registry):
                tg.start_soon(run, chain)
    except BaseExceptionGroup as group:  # the first failure cancels the rest; report it alone
        failures = [e for e in group.exceptions if isinstance(e, StepFailed)]
        if failures:
            raise min(failures, key=lambda e: e.step) from None
        raise
    missing = next((r for r in workflow.result if r.step is not None and (r.step, r.key) not in values), None)
    if missing is not None:
        raise StepFailed(missing.step, "result", InvalidInput(f"{missing} was not produced by its step"))
    results = [values[(r.step, r.key)] if r.step is not None else inits[r.key] for r in workflow.result]
    if any(isinstance(r, str) for r in results):  # an initial image (stored with its content id): look it up
        results = await anyio.to_thread.run_sync(
            lambda: [registry.store.info(registry.store.parse_uri(r)) if isinstance(r, str) else r for r in results]
        )
    return Execution(results, runs, time.perf_counter() - started, dict(inits))


def _chains(workflow: Workflow, registry: Registry) -> list[list[Step]]:
    """The steps cut into chains that can each run in one worker thread.

    A step joins the chain of the step before it when that step is the only one it reads
    from and nothing else reads that step's outputs, and both are code bricks: then no other
    step waits in between, and one thread hop serves the whole chain (a hop and its wake-up
    cost ~0.5 ms per step, several % of a CPU workflow). Anything else starts a chain, so
    independent branches still run concurrently.
    """
    readers: dict[int, set[int]] = {}
    for step in workflow.steps:
        for source in _sources(step):
            readers.setdefault(source, set()).add(step.number)
    chains: list[list[Step]] = []
    tail: dict[int, list[Step]] = {}  # last step of a chain -> the chain
    for step in workflow.steps:
        sources = _sources(step)
        chain = tail.pop(next(iter(sources)), None) if len(sources) == 1 else None
        coded = registry.get(step.brick).runner is None
        if chain is not None and coded and readers[chain[-1].number] == {step.number}:
            chain.append(step)
        else:
            if chain is not None:
                tail[chain[-1].number] = chain
            chain = [step]
            chains.append(chain)
        if coded:
            tail[step.number] = chain
    return chains


def _sources(step: Step) -> set[int]:
    return {v.step for v in step.inputs.values() if isinstance(v, Ref) and v.step is not None}


def _value(value: Any, inits: Mapping[str, str], values: Mapping[tuple[int, str], Any]) -> Any:
    """A step input: a literal as is, a reference as its value (an earlier step's image as the
    `StoredImage` itself, so it is not looked up again by its URI)."""
    if not isinstance(value, Ref):
        return value
    if value.step is None:
        return inits[value.key]
    if (value.step, value.key) not in values:
        raise KeyError(value)
    return values[(value.step, value.key)]
