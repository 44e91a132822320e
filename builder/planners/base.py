"""What every planner backend takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bricks.errors import LegoEditError
from bricks.spec import BrickSpec


@dataclass(frozen=True)
class PlanRequest:
    """One planning attempt.

    `system_prompt` is the whole Builder prompt (role, rules, types, tools, examples) ending
    with the instruction, as the released Builder was trained on: send it as the text beside
    the image. `instruction` is the bare instruction (with the user-mask note when a mask was
    given), for backends that parse it themselves. `inits` maps the names usable as
    `init[<name>]` to their value type ("Image" or "Mask"); `feedback` holds the errors of
    earlier attempts, oldest first, for re-planning; `backends` maps each brick's builder id to
    the backend that will run it ("gpu", "cpu", ...), for planners whose plans depend on it.
    """

    system_prompt: str
    instruction: str
    image: np.ndarray
    bricks: tuple[BrickSpec, ...]
    inits: dict[str, str]
    feedback: tuple[str, ...] = ()
    backends: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanText:
    """A planner's answer: free reasoning (may be empty) and the workflow JSON text."""

    reasoning: str
    workflow: str
    details: dict[str, object] = field(default_factory=dict)  # backend-specific facts: tokens, model, timings


class Planner(Protocol):
    name: str

    async def plan(self, request: PlanRequest) -> PlanText: ...


class PlannerUnavailable(LegoEditError):
    """The backend cannot run here (no model configured, endpoint unreachable, ...)."""


def split_reasoning(text: str) -> tuple[str, str]:
    """'<think>why</think> {json}' -> ('why', '{json}'); text without a think block is all JSON.

    Anything around the JSON object (a code fence, a closing remark) is dropped.
    """
    reasoning = ""
    start, end = text.find("<think>"), text.find("</think>")
    if start != -1 and end > start:
        reasoning = text[start + len("<think>") : end].strip()
        text = text[end + len("</think>") :]
    first, last = text.find("{"), text.rfind("}")
    return reasoning, (text[first : last + 1] if first != -1 and last > first else text.strip())


def feedback_text(request: PlanRequest) -> str:
    """The Builder prompt, plus the errors of earlier plans when re-planning."""
    if not request.feedback:
        return request.system_prompt
    errors = "\n".join(f"- {f}" for f in request.feedback)
    return f"{request.system_prompt}\n\nYour previous plan was rejected:\n{errors}\nWrite a corrected plan."
