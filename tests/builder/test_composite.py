"""Composite tools: checked like workflows when registered, then bricks like any other, for the
executor, the Builder's prompt and its decoding grammar (no fine-tuning, no restart)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import cv2
import numpy as np
import pytest

from bricks import InvalidInput, Registry
from bricks.spec import Param
from builder.composite import MAX_DEPTH, composite
from builder.editor import run_workflow
from builder.grammar import WorkflowGrammar
from builder.prompt import BuilderPrompt
from builder.validate import validate_workflow
from builder.workflow import WorkflowInvalid, parse_workflow
from server.settings import Settings
from tests.builder.conftest import check
from tests.builder.test_mllm import planner, request
from tests.conftest import photo

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "composite" / "color_pop.json").read_text())
IMAGE_INPUT = (Param(name="image", type="Image", description="The photo."),)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.from_settings(Settings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", backend="cpu"))


def add_color_pop(registry: Registry, **changes) -> str:
    definition = {**EXAMPLE, **changes}
    spec, runner = composite(
        registry, name=definition["name"], builder_id=definition["builder_id"], description=definition["description"],
        inputs=[Param.model_validate(p) for p in definition["inputs"]], pipeline=definition["composite"]["pipeline"],
        outputs=definition["composite"]["outputs"], kind="edit", constraint=definition["constraint"],
    )  # fmt: skip
    return registry.add(spec, source="test", runner=runner).name


def wrap(registry: Registry, name: str, inner: str) -> str:
    """A composite of one step: the tool `inner`."""
    spec, runner = composite(
        registry, name=name, builder_id=name.upper().replace("_", "-"), description=f"{inner}, wrapped", inputs=IMAGE_INPUT,
        pipeline=[{"step": 1, "model": inner, "input": {"image": "init[image]"}, "output": {"image": "step1[image]"}}],
        outputs={"image": "step1[image]"},
    )  # fmt: skip
    return registry.add(spec, source="test", runner=runner).name


def test_outputs_take_the_types_and_descriptions_of_the_step_outputs(registry: Registry) -> None:
    spec = registry.get(add_color_pop(registry)).spec
    assert [(o.name, o.type) for o in spec.outputs] == [("image", "Image"), ("subject", "Mask")]
    assert spec.outputs[1].description == registry.get("SOS").spec.outputs[0].description
    assert not spec.same_size and spec.backends == {}


def test_the_workflow_is_validated_at_registration(registry: Registry) -> None:
    bad = [{**s, "model": "SOSS"} if s["step"] == 1 else s for s in EXAMPLE["composite"]["pipeline"]]
    with pytest.raises(WorkflowInvalid, match="unknown brick 'SOSS'; did you mean 'SOS'"):
        add_color_pop(registry, composite={**EXAMPLE["composite"], "pipeline": bad})
    with pytest.raises(WorkflowInvalid, match="parameter `composite.pipeline`: .* init\\[image\\] was not given; available: init\\[picture\\]"):
        add_color_pop(registry, inputs=[{"name": "picture", "type": "Image", "description": "x"}])
    with pytest.raises(InvalidInput, match="at least one image or mask"):
        mask = Param(name="mask", type="Mask", description="x")
        composite(registry, name="score_only", builder_id="SCORE-ONLY", description="x", inputs=(*IMAGE_INPUT, mask),
                            pipeline=[{"step": 1, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "init[mask]"},
                                       "output": {"score": "step1[score]"}}], outputs={"score": "step1[score]"})  # fmt: skip
    assert "color_pop" not in registry


def test_nesting_is_limited(registry: Registry) -> None:
    inner = "adjust"
    for level in range(1, MAX_DEPTH + 1):
        inner = wrap(registry, f"level_{level}", inner)
    with pytest.raises(InvalidInput, match=f"nest {MAX_DEPTH + 1} levels deep"):
        wrap(registry, "one_too_many", inner)


def test_a_composite_whose_brick_is_gone_is_unavailable_until_it_returns(registry: Registry) -> None:
    name = add_color_pop(registry)
    sos = registry.remove("segment_salient")  # e.g. its schema file was deleted from a watched directory
    assert registry.backend_for(registry.get(name)) == (None, "uses 'segment_salient', which is no longer registered")
    assert name not in {b.name for b in registry.available()}
    registry.add(sos.spec, source=sos.source)
    assert registry.backend_for(registry.get(name)) == ("composite", "")


def test_it_runs_and_its_arguments_are_checked_against_its_own_inputs(registry: Registry) -> None:
    name = add_color_pop(registry)
    uri = registry.store.put(photo("chelsea")[::2, ::2]).uri
    out = anyio.run(registry.call, name, {"image": uri})  # saturation defaults to -1: a grey background
    image, subject = (registry.store.get(out[k].id) for k in ("image", "subject"))
    away = cv2.erode((subject == 0).view(np.uint8), np.ones((15, 15), np.uint8)) > 0  # past the change's faded edge
    background = np.ptp(image.astype(int), axis=2)[away]
    assert background.max() <= 1 and subject.mean() > 10
    with pytest.raises(InvalidInput, match="tool 'color_pop', parameter `saturation`: must be <= 0"):
        anyio.run(registry.call, name, {"image": uri, "saturation": 0.5})
    with pytest.raises(InvalidInput, match="tool 'color_pop', parameter `image`: file .* is outside the allowed roots"):
        anyio.run(registry.call, name, {"image": "/nowhere/cat.png"})


def test_prompt_and_grammar_include_a_new_composite_at_once(registry: Registry) -> None:
    prompt = BuilderPrompt(registry)
    assert "COLOR-POP" not in prompt.render("make the background grey")
    add_color_pop(registry)
    text = prompt.render("make the background grey")
    assert "COLOR-POP (Keep the main subject in colour and turn the background grey.)" in text
    assert "Input: {Image[image], Float[saturation]}" in text
    assert "Output: {Image[image], Mask[subject]}" in text
    assert "Constraint: Use for 'colour pop'" in text and "saturation: optional, default -1.0; range -1.0 to 0.0." in text

    plan = {"process": "grey background", "pipeline": [
        {"step": 1, "model": "COLOR-POP", "input": {"image": "init[image]", "saturation": -0.5},
         "output": {"image": "step1[image]", "subject": "step1[subject]"}},
        {"result": "[step1[image], step1[subject]]"}]}  # fmt: skip
    grammar = WorkflowGrammar([b.spec for b in registry.available()], {"image": "Image"}, "grey background")
    assert check(grammar, json.dumps(plan)) is None
    wrong = json.loads(json.dumps(plan))
    wrong["pipeline"][0]["input"]["saturation"] = 0.5  # out of the declared range
    assert check(grammar, json.dumps(wrong)) is not None
    validate_workflow(parse_workflow(plan), registry, {"image": "Image"})


def test_the_tiny_builder_plans_with_a_new_composite_and_the_plan_runs(tiny_builder: Path, registry: Registry) -> None:
    add_color_pop(registry)
    sampler = planner(tiny_builder)
    uri = registry.store.put(photo("chelsea")[::4, ::4]).uri
    for _ in range(3):
        plan = sampler.plan_sync(request(registry, only={"COLOR-POP"}))
        assert {s["model"] for s in json.loads(plan.workflow)["pipeline"] if "model" in s} == {"COLOR-POP"}
        _, _, execution = anyio.run(run_workflow, registry, plan.workflow, uri)
        assert execution.results and all(r.brick == "color_pop" for r in execution.steps)


def test_an_optional_image_input_left_out_is_null_for_the_steps(registry: Registry) -> None:
    mask = Param(name="region", type="Mask", required=False, description="Where to warm; everywhere if left out.")
    spec, runner = composite(
        registry, name="warm_region", builder_id="WARM-REGION", description="Warm a region.", inputs=(*IMAGE_INPUT, mask),
        pipeline=[{"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "mask": "init[region]", "warmth": 0.8},
                   "output": {"image": "step1[image]"}}],
        outputs={"image": "step1[image]"},
    )  # fmt: skip
    name = registry.add(spec, source="test", runner=runner).name
    coffee = photo("coffee")[::4, ::4]
    whole = registry.store.get(anyio.run(registry.call, name, {"image": registry.store.put(coffee).uri})["image"].id)
    assert whole[..., 0].mean() > coffee[..., 0].mean() and whole[..., 2].mean() < coffee[..., 2].mean()
    top = np.zeros(coffee.shape[:2], np.uint8)
    top[:20] = 255
    args = {"image": registry.store.put(coffee).uri, "region": registry.store.put(top).uri}
    part = registry.store.get(anyio.run(registry.call, name, args)["image"].id)
    np.testing.assert_array_equal(part[20:], coffee[20:])


def test_optional_inputs_may_choose_a_steps_input_set(registry: Registry) -> None:
    """RESIZE takes a mask or an image: a composite may pass either of its own optional inputs,
    and declare the same choice as its input sets, so a bad call names its own parameter."""
    inputs = tuple(Param(name=n, type=t, required=False, description=n) for n, t in (("mask", "Mask"), ("image", "Image")))
    pipeline = [{"step": 1, "model": "RESIZE", "input": {"mask": "init[mask]", "image": "init[image]", "ratio": 0.5},
                 "output": {"mask": "step1[mask]", "image": "step1[image]"}}]  # fmt: skip
    for name, sets in (("shrink", ()), ("shrink_either", (("mask",), ("image",)))):
        spec, runner = composite(registry, name=name, builder_id=name.upper().replace("_", "-"), description="Halve the object.",
                                 inputs=inputs, pipeline=pipeline, outputs={"image": "step1[image]"}, input_sets=sets)  # fmt: skip
        registry.add(spec, source="test", runner=runner)
    cutout = np.zeros((64, 64, 4), np.uint8)
    cutout[16:48, 16:48] = 255
    out = anyio.run(registry.call, "shrink_either", {"image": registry.store.put(cutout).uri})
    assert registry.store.get(out["image"].id)[..., 3].sum() < cutout[..., 3].sum() / 2
    with pytest.raises(InvalidInput, match="tool 'shrink_either', parameter `mask`: give exactly one of these sets"):
        anyio.run(registry.call, "shrink_either", {})
    with pytest.raises(InvalidInput, match="step 1 \\(resize_object\\).*give exactly one of these sets"):
        anyio.run(registry.call, "shrink", {})  # no sets declared: the step says what is wrong
    with pytest.raises(WorkflowInvalid, match="RESIZE: give exactly one of these sets"):  # always both: refused
        composite(registry, name="shrink_both", builder_id="SHRINK-BOTH", description="x", inputs=IMAGE_INPUT,
                  pipeline=[{**pipeline[0], "input": {"mask": "init[image]", "image": "init[image]", "ratio": 0.5}}],
                  outputs={"image": "step1[image]"})  # fmt: skip
