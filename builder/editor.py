"""Plan, check and run an edit, re-planning with the error text when a plan fails.

One attempt = the planner writes workflow JSON, it is parsed and validated against the
registry, then executed. A validation or execution error goes back to the planner, at most
`max_retries` times; every attempt is kept and returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio.to_thread

from bricks import InvalidInput, LegoEditError, Registry
from bricks.context import ProgressCallback

from .executor import Execution, StepFailed, execute, store_inits
from .planners.base import Planner, PlannerUnavailable, PlanRequest
from .prompt import BuilderPrompt, instruction_text
from .validate import validate_workflow
from .workflow import Workflow, WorkflowInvalid, parse_workflow


MAX_INSTRUCTION = 2000  # characters: a long paragraph; planners need no more, and the limit bounds their work


@dataclass
class Attempt:
    planner: str
    reasoning: str
    workflow: Any  # the parsed JSON when it parsed, else the raw text
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The attempt as a tool result shows it (backend details left out)."""
        return {k: v for k, v in asdict(self).items() if k != "details"}


@dataclass
class EditOutcome:
    attempts: list[Attempt]
    workflow: Workflow
    execution: Execution | None = None

    def plan(self) -> dict[str, Any]:
        """What the planner decided: the final reasoning, workflow and warnings, and every attempt."""
        final = self.attempts[-1]
        return {
            "reasoning": final.reasoning,
            "workflow": self.workflow.to_json(),
            "warnings": final.warnings,
            "attempts": [a.as_dict() for a in self.attempts],
        }


class EditFailed(LegoEditError):
    """Every attempt failed; `attempts` says how."""

    def __init__(self, attempts: list[Attempt]):
        self.attempts = attempts
        last = attempts[-1].error or {}
        super().__init__(f"no working plan after {len(attempts)} attempt(s): {last.get('message', 'unknown error')}")

    def details(self) -> dict[str, Any]:
        return {"attempts": [a.as_dict() for a in self.attempts]}


def inits_types(mask: bool, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    return {"image": "Image", **({"mask": "Mask"} if mask else {}), **{k: "Image" for k in (extra or {})}}


class Editor:
    def __init__(self, registry: Registry, planner: Planner, prompt: BuilderPrompt, *, max_retries: int = 2):
        self.registry = registry
        self.planner = planner
        self.prompt = prompt
        self.max_retries = max_retries

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
        """Plan (and with `run`, execute) an edit; raises `EditFailed` when no attempt works."""
        if not instruction.strip():
            raise InvalidInput("is empty: say what to change", param="instruction")
        if len(instruction) > MAX_INSTRUCTION:
            raise InvalidInput(f"is {len(instruction):,} characters long; at most {MAX_INSTRUCTION:,} are allowed", param="instruction")
        types = inits_types(mask is not None, extra)
        refs = {"image": image, **({"mask": mask} if mask is not None else {}), **(extra or {})}
        inits = await anyio.to_thread.run_sync(store_inits, self.registry, refs, types)  # decoding: off the loop
        text = instruction_text(instruction.strip(), mask is not None)
        pixels = self.registry.store.get(self.registry.store.parse_uri(inits["image"]))
        attempts: list[Attempt] = []
        feedback: list[str] = []
        available = self.registry.available()
        for _ in range(1 + self.max_retries):
            request = PlanRequest(
                system_prompt=self.prompt.render(text),
                instruction=text,
                image=pixels,
                bricks=tuple(b.spec for b in available),
                inits=types,
                feedback=tuple(feedback),
                backends={b.spec.builder_id: self.registry.backend_for(b)[0] for b in available},
            )
            try:
                plan = await self.planner.plan(request)  # a planner's refusal (InvalidInput) is final
            except PlannerUnavailable:
                if not attempts:
                    raise
                break  # cannot re-plan: report the attempts so far
            attempt = Attempt(self.planner.name, plan.reasoning, _as_json(plan.workflow), details=dict(plan.details))
            attempts.append(attempt)
            try:
                workflow = parse_workflow(plan.workflow)
                attempt.warnings = [str(w) for w in validate_workflow(workflow, self.registry, types)]
                execution = await execute(workflow, self.registry, inits, on_progress=on_progress) if run else None
                return EditOutcome(attempts, workflow, execution)
            except (WorkflowInvalid, StepFailed) as exc:
                kind = "invalid" if isinstance(exc, WorkflowInvalid) else "failed"
                attempt.error = {"kind": kind, "message": str(exc), **exc.details()}
            feedback.append(attempt.error["message"])
            if getattr(self.planner, "deterministic", False):
                break
        raise EditFailed(attempts)


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
