"""The offline planner: what it understands, what it refuses, and that its plans validate."""

import json

import anyio
import pytest

from builder.planners.base import PlanRequest
from builder.planners.rules import PlanRefused, RulesPlanner
from builder.validate import validate_workflow
from builder.workflow import parse_workflow
from tests.conftest import photo


def plan(registry, instruction, mask=False):
    inits = {"image": "Image", **({"mask": "Mask"} if mask else {})}
    request = PlanRequest("", ("The user gave a mask. " if mask else "") + instruction, photo("chelsea"),
                          tuple(b.spec for b in registry.available()), inits)
    text = anyio.run(RulesPlanner(registry.weights).plan, request)
    workflow = parse_workflow(text.workflow)
    validate_workflow(workflow, registry, inits)
    return [s.brick for s in workflow.steps], workflow, text.reasoning


CASES = [
    ("make it brighter", False, ["ADJUST"], {"brightness": 0.12}),
    ("much darker, more contrast and a bit cooler", False, ["ADJUST"], {"brightness": -0.24, "contrast": 0.2, "warmth": -0.15}),
    ("make the colours more vivid", True, ["ADJUST"], {"saturation": 0.3, "mask": "init[mask]"}),
    ("turn it into a watercolor painting", False, ["CMI-PRED", "FLUX-STYLE"], {"style": "watercolour style"}),
    ("make it black and white", False, ["ADJUST"], {"saturation": -1.0}),
    ("make it sepia", False, ["CMI-PRED", "FLUX-STYLE"], {"style": "sepia style"}),
    ("make it red", True, ["FLUX-RCM"], {"mask": "init[mask]"}),
    ("make the subject blue", False, ["SOS", "FLUX-RCM"], {}),
    ("brighten her face", False, ["RES", "ADJUST"], {"prompt": "her face", "brightness": 0.12}),
    ("blur the background behind her", False, ["RES", "INVERSE", "FLUX-CBG"], {"prompt": "change the background to a soft blur"}),
    ("boost the saturation", False, ["ADJUST"], {"saturation": 0.3}),
    ("make it brigher", False, ["ADJUST"], {"brightness": 0.12}),
    ("pump up the colours", False, ["ADJUST"], {"saturation": 0.3}),
    ("less dark", False, ["ADJUST"], {"brightness": 0.12}),
    ("desaturate the background", False, ["SOS", "INVERSE", "ADJUST"], {"saturation": -0.3}),
    ("make the background black and white", False, ["SOS", "INVERSE", "ADJUST"], {"saturation": -1.0}),
    ("white backdrop", False, ["SOS", "INVERSE", "FLUX-CBG"], {"prompt": "change the background to white"}),
    ("remove it", True, ["FASTINPAINT"], {"mask": "init[mask]"}),
    ("change the background to white", False, ["SOS", "INVERSE", "FLUX-CBG"], {"prompt": "change the background to white"}),
    ("blur the background", False, ["SOS", "INVERSE", "FLUX-CBG"], {"prompt": "change the background to a soft blur"}),
    ("extend the picture 2x to the left", False, ["CMI-PRED"], {"left_ratio": 2.0, "right_ratio": 1.0}),
    ("outpaint by 50%", False, ["CMI-PRED"], {"top_ratio": 1.5, "bottom_ratio": 1.5}),
    ("make the subject twice as big", False, ["SOS", "FASTINPAINT", "RESIZE", "COMPOSE"], {"ratio": 2.0}),
    ("cut out the subject", False, ["SOS"], {}),
    ("make it warmer, then sepia", False, ["ADJUST", "CMI-PRED", "FLUX-STYLE"], {"image": "step1[image]"}),
]


@pytest.mark.parametrize("instruction, mask, bricks, expect", CASES, ids=[c[0] for c in CASES])
def test_understood_instructions_give_valid_plans(registry, instruction, mask, bricks, expect):
    got, workflow, reasoning = plan(registry, instruction, mask)
    assert got == bricks and reasoning
    for key, value in expect.items():  # checked on the last step that has the input
        inputs = next(s.inputs for s in reversed(workflow.steps) if key in s.inputs)
        assert str(inputs[key]) == str(value), (key, inputs[key])


@pytest.mark.parametrize("instruction", ["add a hat to the cat", "change the background to a beach at sunset", "make her smile"])
def test_refusals_name_the_alternatives(registry, instruction):
    with pytest.raises(PlanRefused) as err:
        plan(registry, instruction)
    message = str(err.value)
    assert "transformers" in message and "run_workflow" in message or "model planner" in message


def test_edits_chain_on_the_previous_result(registry):
    _, workflow, _ = plan(registry, "blur the background and make it warmer")
    assert str(workflow.steps[-1].inputs["image"]) == "step3[image]"
    assert json.loads(json.dumps(workflow.to_json()))["pipeline"][-1] == {"result": "[step4[image]]"}


@pytest.mark.parametrize("instruction", ["zoom out 2x", "cut out the subject", "make the subject smaller", "blur the background behind her"])
def test_the_rules_planner_produces_only_outputs_it_uses(registry, instruction):
    _, workflow, _ = plan(registry, instruction)
    assert validate_workflow(workflow, registry, {"image": "Image"}) == []  # no "output ... is never used" warnings
