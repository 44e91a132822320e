"""The transformers planner on a tiny random Qwen2.5-VL, loaded through its real loading code.

Random weights under the step-by-step grammars must still write workflows that parse, name
only available bricks with their real inputs, and pass full validation; valid plans are run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import numpy as np
import pytest

from bricks import Registry
from builder.editor import run_workflow
from builder.executor import StepFailed
from builder.grammar import GrammarLimits, WorkflowGrammar
from builder.planners.base import PlannerUnavailable, PlanRequest
from builder.planners.mllm import MLLMPlanner
from builder.validate import validate_workflow
from builder.workflow import WorkflowInvalid, parse_workflow
from tests.conftest import photo

LIMITS = GrammarLimits(max_steps=3, max_string=8, max_whitespace=1)
INSTRUCTION = "remove the dog and make it warmer"


def planner(root: Path, **options: object) -> MLLMPlanner:
    options = {"max_think_tokens": 6, "temperature": 1.0, "seed": 0, "limits": LIMITS, **options}
    return MLLMPlanner(str(root), subfolder="Builder", device="auto", **options)


def request(
    registry: Registry, inits: dict[str, str] | None = None, feedback: tuple[str, ...] = (), only: set[str] | None = None
) -> PlanRequest:
    image = photo("chelsea")[::5, ::5]  # 60x91
    prompt = f"Plan the edit as a workflow of models.\nInstruction: {INSTRUCTION}"
    bricks = tuple(b.spec for b in registry.available() if only is None or b.spec.builder_id in only)
    return PlanRequest(prompt, INSTRUCTION, image, bricks, inits or {"image": "Image"}, feedback)


@pytest.fixture(scope="module")
def sampler(tiny_builder: Path) -> MLLMPlanner:
    return planner(tiny_builder)


def test_sampled_plans_from_random_weights_are_all_valid(sampler: MLLMPlanner, cpu_registry: Registry) -> None:
    ids = {b.spec.builder_id: b.spec for b in cpu_registry.available()}
    valid = ran = tokens = 0
    failures: list[str] = []
    bound = WorkflowGrammar(tuple(ids.values()), {"image": "Image"}, INSTRUCTION, LIMITS).max_bytes()
    started = time.perf_counter()
    for _ in range(20):
        plan = sampler.plan_sync(request(cpu_registry))
        tokens += plan.details["tokens"]
        doc = json.loads(plan.workflow)  # strict: no control characters, nothing but JSON
        assert plan.details["complete"] and len(plan.workflow.encode()) <= bound
        assert doc["process"] == INSTRUCTION
        *steps, result = doc["pipeline"]
        assert list(result) == ["result"] and 1 <= len(steps) <= LIMITS.max_steps
        for number, step in enumerate(steps, 1):
            spec = ids[step["model"]]  # a registered, available brick
            assert step["step"] == number
            assert list(step["input"]) == [p.name for p in spec.inputs]
            assert list(step["output"]) == [o.name for o in spec.outputs]
        try:
            validate_workflow(parse_workflow(doc), cpu_registry, {"image": "Image"})
            valid += 1
        except WorkflowInvalid as exc:
            failures.append(str(exc))
            continue
        try:  # random plans may still ask a brick the impossible (e.g. COMPOSE of nothing)
            anyio.run(run_workflow, cpu_registry, doc, cpu_registry.store.put(photo("chelsea")[::4, ::4]).uri)
            ran += 1
        except StepFailed as exc:
            failures.append(f"ran: {exc}")
    seconds = time.perf_counter() - started
    print(f"\nconstrained random plans: 20/20 parse, {valid}/20 fully valid, {ran}/{valid} executed; "
          f"{tokens} tokens in {seconds:.1f} s\n" + "\n".join(failures))  # fmt: skip
    assert valid == 20, failures


def test_plans_run_when_the_bricks_have_no_unwritten_rules(sampler: MLLMPlanner, cpu_registry: Registry) -> None:
    """Bricks whose schema says all they need (input sets and the outputs they produce included;
    no colour words, no transparency rules): random valid plans of them run."""
    plain = {"SOS", "BBOX", "FASTINPAINT", "ADJUST", "BRIGHT", "INVERSE", "RESIZE", "CMI-PRED"}
    uri = cpu_registry.store.put(photo("chelsea")[::4, ::4]).uri
    ran = 0
    for _ in range(8):
        plan = sampler.plan_sync(request(cpu_registry, only=plain))
        try:
            _, _, execution = anyio.run(run_workflow, cpu_registry, plan.workflow, uri)
        except StepFailed as exc:  # what the pixels decide (e.g. a 5x blow-up has no salient object) is not a rule
            assert exc.brick == "segment_salient" and "no salient object" in exc.reason, exc
            continue
        assert execution.results
        ran += 1
    assert ran >= 6


def test_greedy_plan_with_a_user_mask_and_feedback(tiny_builder: Path, cpu_registry: Registry) -> None:
    greedy = planner(tiny_builder, temperature=0.0, max_think_tokens=0)
    inits = {"image": "Image", "mask": "Mask"}
    plan = greedy.plan_sync(request(cpu_registry, inits, feedback=("step 2: `mask` is required",)))
    assert plan.reasoning == "" and plan.details["think_cut"]
    validate_workflow(parse_workflow(plan.workflow), cpu_registry, inits)
    again = greedy.plan_sync(request(cpu_registry, inits, feedback=("step 2: `mask` is required",)))
    assert again.workflow == plan.workflow  # greedy decoding repeats itself


def test_reasoning_is_bounded_and_closed(sampler: MLLMPlanner, cpu_registry: Registry) -> None:
    plan = sampler.plan_sync(request(cpu_registry))
    assert plan.details["think_tokens"] <= 6
    assert "</think>" not in plan.reasoning and plan.workflow.startswith("{")
    assert plan.details["tokens"] == plan.details["think_tokens"] + len(sampler.load().close_ids) * plan.details["think_cut"] + plan.details["workflow_tokens"] + 1


@pytest.mark.anyio
async def test_async_plan_and_cancellation(tiny_builder: Path, cpu_registry: Registry) -> None:
    slow = planner(tiny_builder, max_think_tokens=100_000)
    slow.load()
    started = time.perf_counter()
    with anyio.move_on_after(0.5):
        await slow.plan(request(cpu_registry))
        pytest.fail("a 100k-token reasoning finished in half a second")
    assert time.perf_counter() - started < 2.0  # stopped at the next token, not after the budget
    plan = await planner(tiny_builder).plan(request(cpu_registry))
    assert plan.details["complete"]


def test_missing_model_is_unavailable(tmp_path: Path, cpu_registry: Registry) -> None:
    with pytest.raises(PlannerUnavailable, match="cannot load the Builder model"):
        MLLMPlanner(str(tmp_path / "nothing-here"), subfolder=None).plan_sync(request(cpu_registry))


def test_importing_the_planner_does_not_import_torch() -> None:
    code = "import sys, builder.planners.mllm, builder.grammar; print(sorted({'torch', 'transformers', 'llguidance'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("image", [np.zeros((90, 120), np.uint8), np.zeros((900, 1200, 4), np.uint8)], ids=["grey", "rgba-large"])
def test_grey_and_rgba_images_are_accepted(sampler: MLLMPlanner, cpu_registry: Registry, image: np.ndarray) -> None:
    odd = PlanRequest("p", "i", image, request(cpu_registry).bricks, {"image": "Image"})
    assert sampler._inputs(sampler.load(), odd)["pixel_values"].shape[-1] == 3 * 2 * 14 * 14
