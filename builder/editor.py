"""Plan, check, run and judge an edit, re-planning with what went wrong.

One attempt = the planner writes workflow JSON, it is parsed and validated against the
registry, executed, and (with a judge) scored. A validation or execution error goes back to
the planner, at most `max_retries` times. A result the judge scores below the threshold goes
back with the judge's critique, within the `Verify` budget of judged attempts and seconds; the
best-scoring result is returned. Every attempt is kept and returned.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from bricks import InvalidInput, LegoEditError, Registry
from bricks.context import ProgressCallback

from .executor import Execution, StepFailed, execute, store_inits
from .judges.base import Judge, JudgeRequest, JudgeUnavailable
from .planners.base import Planner, PlannerUnavailable, PlanRequest
from .prompt import BuilderPrompt, instruction_text
from .validate import validate_workflow
from .workflow import Workflow, WorkflowInvalid, parse_workflow

MAX_INSTRUCTION = 2000  # characters: a long paragraph; planners need no more, and the limit bounds their work


@dataclass(frozen=True)
class Verify:
    """When a judged result is good enough, and how much re-planning may cost to get one."""

    threshold: float = 6.0
    """Overall score (0-10) a result needs to end the search."""
    attempts: int = 3
    """Judged attempts at most."""
    seconds: float = 300.0
    """Wall time at most: no re-plan starts that the last attempt's duration says would overrun,
    and one still running at the limit is stopped. The first attempt always runs."""


@dataclass
class Attempt:
    planner: str
    reasoning: str
    workflow: Any  # the parsed JSON when it parsed, else the raw text
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds of its phases: plan, run, judge."""

    def as_dict(self) -> dict[str, Any]:
        """The attempt as a tool result shows it (backend details left out)."""
        return {k: v for k, v in asdict(self).items() if k != "details"}


@dataclass
class EditOutcome:
    attempts: list[Attempt]
    workflow: Workflow
    execution: Execution | None = None
    chosen: int = -1
    """The index of the attempt returned: the best-judged one, else the last."""
    judge: dict[str, Any] | None = None
    """Which judge scored the attempts, against what threshold (None: not judged)."""

    def plan(self) -> dict[str, Any]:
        """What the planner decided: the chosen attempt's reasoning, workflow and warnings, and every attempt."""
        chosen = self.attempts[self.chosen]
        return {
            "reasoning": chosen.reasoning,
            "workflow": self.workflow.to_json(),
            "warnings": chosen.warnings,
            "attempts": [a.as_dict() for a in self.attempts],
        }

    def verification(self) -> dict[str, Any]:
        """The judge and the attempt returned (1-based), for lego_edit's result."""
        return {"judge": self.judge or {"name": None, "why": "not judged"}, "chosen_attempt": self.chosen % len(self.attempts) + 1}


class EditFailed(LegoEditError):
    """Every attempt failed; `attempts` says how."""

    def __init__(self, attempts: list[Attempt]):
        self.attempts = attempts
        last = attempts[-1].error or {}
        super().__init__(f"no working plan after {len(attempts)} attempt(s): {last.get('message', 'unknown error')}")

    def details(self) -> dict[str, Any]:
        return {"attempts": [a.as_dict() for a in self.attempts]}


def check_instruction(instruction: str, hint: str) -> None:
    """Refuse an empty instruction (saying `hint`) or one too long for a planner or judge."""
    if not instruction.strip():
        raise InvalidInput(f"is empty: {hint}", param="instruction")
    if len(instruction) > MAX_INSTRUCTION:
        raise InvalidInput(f"is {len(instruction):,} characters long; at most {MAX_INSTRUCTION:,} are allowed", param="instruction")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def inits_types(mask: bool, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The workflow's initial values by name: image, mask when given, and the further images `extra`."""
    for name in extra or {}:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in ("image", "mask"):
            raise InvalidInput(f"name {name!r} cannot be an init[<name>]: use letters, digits and _, not 'image' or 'mask'", param="inputs")
    return {"image": "Image", **({"mask": "Mask"} if mask else {}), **{k: "Image" for k in (extra or {})}}


class Editor:
    def __init__(
        self, registry: Registry, planner: Planner, prompt: BuilderPrompt, *, max_retries: int = 2,
        judge: Judge | None = None, verify: Verify = Verify(), no_judge: str = "",
    ):  # fmt: skip
        """`judge` None runs each plan once it works; `no_judge` then says why there is none."""
        self.registry = registry
        self.planner = planner
        self.prompt = prompt
        self.max_retries = max_retries
        self.judge = judge
        self.verify = verify
        self.no_judge = no_judge

    async def edit(
        self,
        image: str,
        instruction: str,
        mask: str | None = None,
        extra: Mapping[str, str] | None = None,
        *,
        run: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> EditOutcome:
        """Plan (and with `run`, execute and judge) an edit; raises `EditFailed` when no attempt works."""
        check_instruction(instruction, "say what to change")
        types = inits_types(mask is not None, extra)
        refs = {"image": image, **({"mask": mask} if mask is not None else {}), **(extra or {})}
        inits = await anyio.to_thread.run_sync(store_inits, self.registry, refs, types)  # decoding: off the loop
        text = instruction_text(instruction.strip(), mask is not None, list(extra or ()))
        pixels = self.registry.store.get(self.registry.store.parse_uri(inits["image"]))
        judge = self.judge if run else None
        search = _Search(self.verify, judge.name if judge else None, self.no_judge if run else "")
        progress = _Progress(on_progress) if on_progress is not None else None
        feedback: list[str] = []
        failures = 0
        available = self.registry.available()
        while True:
            request = PlanRequest(
                system_prompt=self.prompt.render(text),
                instruction=text,
                image=pixels,
                bricks=tuple(b.spec for b in available),
                inits=types,
                feedback=tuple(feedback),
                backends={b.spec.builder_id: self.registry.backend_for(b)[0] for b in available},
            )
            attempt: Attempt | None = None
            with anyio.move_on_after(search.time_left()) as scope:
                clock = time.perf_counter()
                try:
                    plan = await self.planner.plan(request)  # a planner's refusal (InvalidInput) is final
                except PlannerUnavailable:
                    if not search.attempts:
                        raise
                    break  # cannot re-plan: report the attempts so far
                attempt = search.add(Attempt(self.planner.name, plan.reasoning, _as_json(plan.workflow), details=dict(plan.details)))
                attempt.seconds["plan"] = round(time.perf_counter() - clock, 3)
                try:
                    workflow = parse_workflow(plan.workflow)
                    attempt.warnings = [str(w) for w in validate_workflow(workflow, self.registry, types)]
                    if progress is not None:
                        progress.next_attempt(len(search.attempts))
                    execution = await execute(workflow, self.registry, inits, on_progress=progress) if run else None
                except (WorkflowInvalid, StepFailed) as exc:
                    kind = "invalid" if isinstance(exc, WorkflowInvalid) else "failed"
                    attempt.error = {"kind": kind, "message": str(exc), **exc.details()}
                    feedback.append(attempt.error["message"])
                    failures += 1
                    if failures > self.max_retries or getattr(self.planner, "deterministic", False):
                        break
                    continue
                if execution is not None:
                    attempt.seconds["run"] = round(execution.seconds, 3)
                if judge is None:
                    return search.outcome(workflow, execution)
                try:
                    verdict = await judge.judge(JudgeRequest(pixels, self._edited(execution), instruction))
                except JudgeUnavailable as exc:
                    if search.best is None:
                        return search.outcome(workflow, execution, why_not=str(exc))
                    attempt.warnings.append(f"not judged: {exc}")
                    break
                attempt.verdict = verdict.as_dict()
                attempt.seconds["judge"] = round(verdict.seconds, 3)
                search.scored(verdict.overall, workflow, execution)
                if not search.go_on(verdict.overall) or getattr(self.planner, "deterministic", False):
                    break
                feedback.append(verdict.feedback())
            if scope.cancelled_caught:
                search.out_of_time(attempt, self.planner.name)
                break
            if search.time_left() <= search.last_duration():
                break  # the next attempt would not finish in time
        if search.best is not None:
            return search.outcome(*search.best[1:])
        raise EditFailed(search.attempts)

    def _edited(self, execution: Execution) -> Any:
        """The pixels of the first image the workflow returns (a mask when it returns only masks)."""
        store = self.registry.store
        first = next((r for r in execution.results if not r.is_mask), execution.results[0])
        return store.get(first.id)


class _Search:
    """The attempts of one edit, the best judged one, and what is left of the budget."""

    def __init__(self, verify: Verify, judge: str | None, no_judge: str):
        self.verify = verify
        self.judge = judge
        self.no_judge = no_judge
        self.attempts: list[Attempt] = []
        self.best: tuple[float, Workflow, Execution | None] | None = None
        self.judged = 0
        self.started = time.monotonic()
        self._chosen = -1

    def add(self, attempt: Attempt) -> Attempt:
        self.attempts.append(attempt)
        return attempt

    def scored(self, score: float, workflow: Workflow, execution: Execution | None) -> None:
        self.judged += 1
        if self.best is None or score > self.best[0]:
            self.best, self._chosen = (score, workflow, execution), len(self.attempts) - 1

    def go_on(self, score: float) -> bool:
        return score < self.verify.threshold and self.judged < self.verify.attempts

    def time_left(self) -> float:
        """Seconds the next attempt may take; unbounded for the first (an edit always gets one)."""
        if not self.attempts:
            return math.inf
        return self.verify.seconds - (time.monotonic() - self.started)

    def last_duration(self) -> float:
        return sum(self.attempts[-1].seconds.values()) if self.attempts and self.best is not None else 0.0

    def out_of_time(self, attempt: Attempt | None, planner: str) -> None:
        error = {"kind": "out_of_time", "message": f"stopped: the verify budget of {self.verify.seconds:g} s ran out"}
        if attempt is None:
            attempt = self.add(Attempt(planner, "", None))
        attempt.error = error

    def outcome(self, workflow: Workflow, execution: Execution | None, *, why_not: str | None = None) -> EditOutcome:
        """The result `workflow` gave; `why_not` says why it was not judged (else the search's reason)."""
        if self.judge is not None and why_not is None:
            v = self.verify
            return EditOutcome(self.attempts, workflow, execution, self._chosen, {
                "name": self.judge, "threshold": v.threshold, "attempts": v.attempts, "seconds": v.seconds,
            })  # fmt: skip
        judge = {"name": None, "why": why_not or self.no_judge} if (why_not or self.no_judge) else None
        return EditOutcome(self.attempts, workflow, execution, len(self.attempts) - 1, judge)


class _Progress:
    """One rising progress stream over several attempts: each continues where the last stopped."""

    def __init__(self, report: ProgressCallback):
        self.report = report
        self.base = self.last = 0.0
        self.attempt = 1

    def next_attempt(self, number: int) -> None:
        self.base, self.attempt = self.last, number

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.last = self.base + progress
        prefix = f"attempt {self.attempt}: " if self.attempt > 1 else ""
        await self.report(self.last, self.base + total if total else None, prefix + (message or ""))


async def run_workflow(
    registry: Registry,
    workflow: str | Mapping[str, Any],
    image: str,
    mask: str | None = None,
    extra: Mapping[str, str] | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> tuple[Workflow, list[str], Execution]:
    """Check and run a workflow written by the caller; nothing runs if it is invalid."""
    types = inits_types(mask is not None, extra)
    refs = {"image": image, **({"mask": mask} if mask is not None else {}), **(extra or {})}

    def prepare() -> tuple[Workflow, list[str], dict[str, str]]:
        parsed = parse_workflow(workflow)
        warnings = [str(w) for w in validate_workflow(parsed, registry, types)]
        return parsed, warnings, store_inits(registry, refs, types)  # nothing is decoded for a bad workflow

    # Parsing, validation and decoding the caller's images take CPU time: off the event loop.
    parsed, warnings, inits = await anyio.to_thread.run_sync(prepare)
    return parsed, warnings, await execute(parsed, registry, inits, on_progress=on_progress)


def _as_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
