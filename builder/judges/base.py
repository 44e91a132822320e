"""What every judge backend takes and gives back, and the one rubric they all ask.

The rubric is VIEScore's, as GEdit-Bench scores with it: semantic consistency (SC) is the lower
of "did the edit do what was asked" and "was nothing else changed", perceptual quality (PQ) the
lower of "does it look natural" and "is it free of artifacts", each 0 to 10, and the overall
score is sqrt(SC x PQ). VIEScore asks its two questions in two calls; here one answer carries
all four numbers and a short critique, which the re-planner reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bricks.errors import LegoEditError

CRITIQUE_CHARS = 400
SCORES = ("editing_success", "over_editing", "naturalness", "artifacts")

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{name: {"type": "integer", "minimum": 0, "maximum": 10} for name in SCORES},
        "critique": {"type": "string", "maxLength": CRITIQUE_CHARS},
    },
    "required": [*SCORES, "critique"],
    "additionalProperties": False,
}
"""The answer every backend is held to (by grammar, `response_format`, or checked after)."""

RUBRIC = """You are a strict judge of image edits. The first image is the original; the second is \
an AI's edit of it, made for this instruction:

{instruction}

Score each from 0 to 10 (integers):
- editing_success: how fully the second image carries out the instruction (0 = not at all, 10 = exactly).
- over_editing: how well everything the instruction did not ask for is kept (0 = a different image, 10 = only the asked change).
- naturalness: how natural and realistic the second image looks (lighting, shadows, proportions).
- artifacts: how free the second image is of distortion, blur, smears, seams and broken details (10 = none).
Then a critique of at most two sentences: what is wrong and what the next attempt should do differently.
Answer with JSON only: {{"editing_success": n, "over_editing": n, "naturalness": n, "artifacts": n, "critique": "..."}}"""


class JudgeUnavailable(LegoEditError):
    """The judge cannot run here or did not answer usefully (no model, endpoint down, bad answer)."""


@dataclass(frozen=True)
class JudgeRequest:
    source: np.ndarray
    edited: np.ndarray
    instruction: str

    def prompt(self) -> str:
        return RUBRIC.format(instruction=self.instruction.strip())


@dataclass(frozen=True)
class Verdict:
    editing_success: int
    over_editing: int
    naturalness: int
    artifacts: int
    critique: str
    judge: str
    seconds: float = 0.0

    @property
    def semantics(self) -> int:
        """SC: the edit did what was asked and nothing else."""
        return min(self.editing_success, self.over_editing)

    @property
    def quality(self) -> int:
        """PQ: the result looks right."""
        return min(self.naturalness, self.artifacts)

    @property
    def overall(self) -> float:
        return math.sqrt(self.semantics * self.quality)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": round(self.overall, 3), "semantic_consistency": self.semantics, "perceptual_quality": self.quality,
            "scores": {name: getattr(self, name) for name in SCORES}, "critique": self.critique, "judge": self.judge,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip

    def feedback(self) -> str:
        """What the planner is told when this result is not good enough."""
        return (
            f"The result of that plan scored {self.overall:.1f}/10 (instruction followed {self.editing_success}/10, "
            f"rest kept {self.over_editing}/10, natural {self.naturalness}/10, clean {self.artifacts}/10). "
            f"Judge: {self.critique} Plan differently: other tools or other inputs."
        )


class Judge(Protocol):
    name: str

    async def judge(self, request: JudgeRequest) -> Verdict: ...


def parse_verdict(text: str, judge: str, seconds: float = 0.0) -> Verdict:
    """The verdict in a backend's answer (a JSON object, possibly inside prose or a code fence),
    checked against `VERDICT_SCHEMA`; `JudgeUnavailable` says what was wrong."""
    first, last = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[first : last + 1]) if first != -1 and last > first else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise JudgeUnavailable(f"the {judge} judge did not answer a JSON object: {text[:200]!r}")
    scores = {}
    for name in SCORES:
        value = data.get(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
            raise JudgeUnavailable(f"the {judge} judge gave {name}={value!r}; expected an integer from 0 to 10")
        scores[name] = value
    critique = data.get("critique", "")
    if not isinstance(critique, str):
        raise JudgeUnavailable(f"the {judge} judge's critique is not text: {critique!r}")
    return Verdict(**scores, critique=" ".join(critique.split())[:CRITIQUE_CHARS], judge=judge, seconds=seconds)
