"""The Builder prompt: rendered from the registry; a template file can replace it."""

import anyio
import numpy as np

from builder.planners.base import PlannerUnavailable, PlanRequest, PlanText
from builder.planners.rules import RulesPlanner
from builder.planners.select import Fallback
from builder.prompt import BuilderPrompt, brick_text, instruction_text


def test_layout_and_only_available_bricks(registry):
    text = BuilderPrompt(registry).render(instruction_text("blur the background", True))
    order = ["**Role**", "**Rules**", "**Input and output types**", "PREDICT models:", "EDIT models:", "**Example 1:**", "Now, I give you"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert 'user instruction: "The user gave a mask. blur the background"' in text
    for brick in registry.all():
        offered = f".{brick.spec.builder_id} (" in text
        assert offered == (brick in registry.available()), brick.name
    assert "FLUX-FILL" not in text.split("**Example 1:**")[1]  # examples needing unavailable bricks are left out


def test_brick_text_lines(registry):
    lines = brick_text(registry.get("FASTINPAINT").spec, 3).splitlines()
    assert lines[0].startswith("3.FASTINPAINT (Remove the masked region")
    assert lines[1:3] == ["Input: {Image[image], Mask[mask]}", "Output: {Image[image], Float[score]}"]
    assert lines[3].startswith("Constraint: ")


def test_each_brick_carries_the_note_of_the_backend_that_runs_it(registry):
    text = BuilderPrompt(registry).render("make the car red")
    recolor = next(line for line in text.splitlines() if line.startswith("Constraint: Segment the object first"))
    spec = registry.get("FLUX-RCM").spec
    assert spec.notes["cpu"] in recolor and spec.notes["gpu"] not in recolor


def test_a_template_file_replaces_the_text(registry, tmp_path):
    template = tmp_path / "prompt.txt"
    template.write_text("Tools:\n$edit_models\nDo this: YourInstruction")
    text = BuilderPrompt(registry, template).render("make it warmer")
    assert text.startswith("Tools:\n1.") and text.endswith("Do this: make it warmer")
    assert "ADJUST" in text and "**Role**" not in text


def test_auto_falls_back_to_rules_when_the_model_cannot_load(registry):
    class Broken:
        name = "transformers"

        async def plan(self, request: PlanRequest) -> PlanText:
            raise PlannerUnavailable("no weights at /models/builder")

    request = PlanRequest("", "make it warmer", np.zeros((8, 8, 3), np.uint8), tuple(b.spec for b in registry.available()), {"image": "Image"})
    planner = Fallback(Broken(), RulesPlanner(registry.weights))
    text = anyio.run(planner.plan, request)
    assert text.reasoning.startswith("(transformers planner unavailable: no weights at /models/builder)")
    assert planner.name == "rules" and '"ADJUST"' in text.workflow
    assert planner.deterministic  # so the editor does not re-plan with rules, which would answer the same
    again = anyio.run(planner.plan, request)  # a re-plan of this edit goes straight to rules
    assert not again.reasoning.startswith("(transformers")
