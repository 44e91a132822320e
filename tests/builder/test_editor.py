"""The editor's verify-and-re-plan loop: a scripted planner and judge over the real CPU bricks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import anyio
import numpy as np
import pytest

from bricks import Registry
from builder.editor import Editor, Verify
from builder.judges.base import JudgeRequest, JudgeUnavailable, Verdict
from builder.planners.base import PlanRequest, PlanText
from builder.prompt import BuilderPrompt
from tests.conftest import photo

pytestmark = pytest.mark.anyio


def plan(amount: float) -> str:
    """Brighten by `amount`: each plan gives a different picture."""
    return json.dumps({"process": f"brighten by {amount}", "pipeline": [
        {"step": 1, "model": "BRIGHT", "input": {"image": "init[image]", "ratio": 0.5 + amount}, "output": {"image": "step1[image]"}},
        {"result": "[step1[image]]"},
    ]})  # fmt: skip


@dataclass
class ScriptedPlanner:
    plans: list[str]
    name: str = "scripted"
    seen: list[PlanRequest] = field(default_factory=list)
    delay: float = 0.0

    async def plan(self, request: PlanRequest) -> PlanText:
        self.seen.append(request)
        await anyio.sleep(self.delay)
        return PlanText(f"plan {len(self.seen)}", self.plans[min(len(self.seen), len(self.plans)) - 1])


@dataclass
class ScriptedJudge:
    """Gives the scripted overall scores in turn (SC = PQ = score); its critique says how much brighter it got."""

    scores: list[int] | None = None
    name: str = "scripted"
    seen: list[JudgeRequest] = field(default_factory=list)
    delay: float = 0.0

    async def judge(self, request: JudgeRequest) -> Verdict:
        self.seen.append(request)
        await anyio.sleep(self.delay)
        if self.scores is None:
            raise JudgeUnavailable("the scripted judge is down")
        score = self.scores[min(len(self.seen), len(self.scores)) - 1]
        gain = float(request.edited.mean() - request.source.mean())
        return Verdict(score, 10, score, 10, f"brightness went up by {gain:.0f}; brighter still", self.name, seconds=self.delay)


@pytest.fixture
def image(run) -> str:
    return run.put(photo("coffee")[::4, ::4])


def editor(registry: Registry, planner, judge, **verify) -> Editor:
    return Editor(registry, planner, BuilderPrompt(registry), judge=judge, verify=Verify(**verify))


async def test_a_failing_first_result_is_re_planned_with_the_critique_and_the_best_returned(registry, image):
    planner = ScriptedPlanner([plan(0.1), plan(0.5)])
    judge = ScriptedJudge([3, 8])
    outcome = await editor(registry, planner, judge, threshold=6).edit(image, "make it much brighter")
    assert [a.verdict["overall"] for a in outcome.attempts] == [3.0, 8.0]
    assert outcome.chosen == 1 and outcome.workflow.to_json()["process"] == "brighten by 0.5"
    assert "3.0/10" in planner.seen[1].feedback[0] and "brighter still" in planner.seen[1].feedback[0]
    # the judge saw the source and each result as pixels
    assert judge.seen[1].edited.mean() > judge.seen[0].edited.mean() > judge.seen[0].source.mean()
    assert outcome.verification() == {"chosen_attempt": 2, "judge": {"name": "scripted", "threshold": 6, "attempts": 3, "seconds": 300.0}}
    for attempt in outcome.attempts:
        assert set(attempt.seconds) == {"plan", "run", "judge"} and attempt.as_dict()["verdict"]["critique"]
    assert outcome.plan()["reasoning"] == "plan 2"


async def test_the_attempts_budget_stops_the_search_and_the_best_wins(registry, image):
    planner = ScriptedPlanner([plan(0.1), plan(0.4), plan(0.2), plan(0.3)])
    outcome = await editor(registry, planner, ScriptedJudge([2, 5, 4, 9]), attempts=3).edit(image, "brighter")
    assert len(outcome.attempts) == 3 and len(planner.seen) == 3
    assert outcome.chosen == 1 and outcome.workflow.to_json()["process"] == "brighten by 0.4"
    out = registry.store.get(outcome.execution.results[0].id)
    alone = registry.store.get((await registry.call("brightness", {"image": image, "ratio": 0.9}))["image"].id)
    assert np.array_equal(out, alone)  # the best attempt's own pixels


async def test_the_seconds_budget_stops_a_slow_search_in_time(registry, image):
    planner = ScriptedPlanner([plan(0.1), plan(0.2), plan(0.3)], delay=0.4)
    started = time.monotonic()
    outcome = await editor(registry, planner, ScriptedJudge([1, 2, 3]), attempts=10, seconds=1.0).edit(image, "brighter")
    took = time.monotonic() - started
    assert took < 1.0 + 0.5  # the budget, plus the slack of one check
    assert 1 <= len(outcome.attempts) <= 2
    assert outcome.execution is not None and outcome.attempts[outcome.chosen].verdict is not None


async def test_a_re_plan_running_at_the_deadline_is_stopped(registry, image):
    slow = ScriptedPlanner([plan(0.1), plan(0.2)])
    judge = ScriptedJudge([1, 9])
    ed = editor(registry, slow, judge, seconds=0.6)

    async def second_plan_is_slow(request: PlanRequest) -> PlanText:
        slow.delay = 0.0 if not slow.seen else 5.0
        return await ScriptedPlanner.plan(slow, request)

    slow.plan = second_plan_is_slow  # type: ignore[method-assign]
    started = time.monotonic()
    outcome = await ed.edit(image, "brighter")
    assert time.monotonic() - started < 1.5
    assert [a.error["kind"] if a.error else None for a in outcome.attempts] == [None, "out_of_time"]
    assert outcome.chosen == 0 and outcome.execution is not None


async def test_a_good_first_result_ends_the_search(registry, image):
    planner = ScriptedPlanner([plan(0.3)])
    outcome = await editor(registry, planner, ScriptedJudge([7])).edit(image, "brighter")
    assert len(outcome.attempts) == 1 and len(planner.seen) == 1 and outcome.chosen == 0


async def test_no_judge_runs_once_and_says_why(registry, image):
    ed = Editor(registry, ScriptedPlanner([plan(0.3)]), BuilderPrompt(registry), no_judge="no judge is available")
    outcome = await ed.edit(image, "brighter")
    assert len(outcome.attempts) == 1 and outcome.attempts[0].verdict is None
    assert outcome.verification() == {"judge": {"name": None, "why": "no judge is available"}, "chosen_attempt": 1}


async def test_a_judge_that_fails_leaves_the_result_unjudged(registry, image):
    outcome = await editor(registry, ScriptedPlanner([plan(0.3)]), ScriptedJudge(None)).edit(image, "brighter")
    assert outcome.execution is not None
    assert outcome.verification()["judge"] == {"name": None, "why": "the scripted judge is down"}


async def test_a_deterministic_planner_is_judged_once(registry, image):
    planner = ScriptedPlanner([plan(0.1), plan(0.2)])
    planner.deterministic = True  # type: ignore[attr-defined]
    outcome = await editor(registry, planner, ScriptedJudge([1, 9])).edit(image, "brighter")
    assert len(planner.seen) == 1 and outcome.attempts[0].verdict["overall"] == 1.0


async def test_an_invalid_re_plan_does_not_lose_the_judged_result(registry, image):
    planner = ScriptedPlanner([plan(0.1), '{"process": "x", "pipeline": [{"result": "[step9[image]]"}]}', plan(0.2)])
    outcome = await editor(registry, planner, ScriptedJudge([2, 8])).edit(image, "brighter")
    kinds = [(a.error or {}).get("kind") for a in outcome.attempts]
    assert kinds == [None, "invalid", None] and outcome.chosen == 2


async def test_progress_keeps_rising_across_attempts(registry, image):
    seen = []

    async def progress(done, total, message):
        seen.append((done, total, message))

    await editor(registry, ScriptedPlanner([plan(0.1), plan(0.2)]), ScriptedJudge([1, 9])).edit(image, "brighter", on_progress=progress)
    values = [d for d, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert any(m.startswith("attempt 2: ") for _, _, m in seen)
