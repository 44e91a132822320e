"""lego_edit, plan_edit, run_workflow and the two resources, through real MCP clients."""

import json

import mcp.types as types
import numpy as np
import pytest
from mcp import Client
from PIL import Image

from server.app import LegoEditServer
from server.runtime import Runtime
from tests.conftest import changed
from tests.server.conftest import MODES

pytestmark = pytest.mark.anyio


def png(client_result) -> np.ndarray:
    import base64
    import io

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(client_result.contents[0].blob))))


@pytest.mark.parametrize("mode", MODES)
async def test_lego_edit_with_the_rules_planner(server, photo_file, mode):
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "make it black and white"})
        assert not result.is_error, result.content
        out = result.structured_content
        assert [s["model"] for s in out["workflow"]["pipeline"][:-1]] == ["ADJUST"]
        assert "saturation -1.00" in out["reasoning"] and set(out["timings"]) >= {"total", "step1 adjust"}
        assert out["attempts"][0]["planner"] == "rules" and out["attempts"][0]["error"] is None
        grey = png(await client.read_resource(out["results"][0]["uri"]))
    assert grey.shape == (300, 451, 3) and (grey.max(axis=2).astype(int) - grey.min(axis=2) <= 1).all()


@pytest.mark.parametrize("mode", MODES)
async def test_plan_edit_runs_nothing_and_run_workflow_runs_its_plan(server, photo_file, mode):
    async with Client(server, mode=mode) as client:
        planned = await client.call_tool("plan_edit", {"image": str(photo_file), "instruction": "a bit brighter"})
        assert not planned.is_error
        workflow = planned.structured_content["workflow"]
        assert workflow["pipeline"][0]["model"] == "ADJUST"
        ran = await client.call_tool("run_workflow", {"workflow": workflow, "image": str(photo_file)})
        assert not ran.is_error, ran.content
        assert ran.structured_content["results"][0]["width"] == 451


@pytest.mark.parametrize("mode", MODES)
async def test_invalid_workflow_is_a_structured_error_and_the_server_keeps_serving(server, photo_file, mode):
    bad = {"pipeline": [{"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "warmth": 3}, "output": {"image": "step1[image]"}},
                        {"result": "[step1[image]]"}]}
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("run_workflow", {"workflow": json.dumps(bad), "image": str(photo_file)})
        assert result.is_error
        text = result.content[0].text
        assert "step 1 `warmth`: must be <= 1.0, got 3" in text
        assert json.loads(text[text.index("\n") + 1:])["issues"] == [{"step": 1, "input": "warmth", "reason": "must be <= 1.0, got 3"}]
        refused = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "add a hat"})
        assert refused.is_error and "run_workflow" in refused.content[0].text
        ok = await client.call_tool("mask_to_box", {"mask": str(photo_file)})
        assert not ok.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_resources_schema_and_prompt(server, mode):
    async with Client(server, mode=mode) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"lego://workflow/schema", "lego://builder/prompt"} <= listed
        prompt = (await client.read_resource("lego://builder/prompt")).contents[0].text
    assert "PREDICT models:" in prompt and ".CMI-PRED (" in prompt
    assert "Input: {Image[image], Mask[mask], Float[brightness]" in prompt  # ADJUST's line
    assert "RES (" in prompt  # its CPU backend finds people, faces and the main subject
    assert "FLUX-FILL (" not in prompt  # unavailable bricks are not offered to the planner
    assert prompt.rstrip().endswith('instruction: "<instruction>", please output the multi-model collaboration process json.')


PLAN = {"process": "x", "pipeline": [
    {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "saturation": -1.0}, "output": {"image": "step1[image]"}},
    {"result": "[step1[image]]"}]}


@pytest.mark.parametrize("mode", MODES)
async def test_sampling_planner_uses_the_hosts_model(server, photo_file, mode):
    asked = []

    async def sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params)
        answer = "<think>greyscale means no saturation</think>" + json.dumps(PLAN)
        return types.CreateMessageResult(role="assistant", model="host-llm", content=types.TextContent(text=answer), stop_reason="endTurn")

    async with Client(server, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "remove all colour"})
    assert not result.is_error, result.content
    assert result.structured_content["reasoning"] == "greyscale means no saturation"
    assert result.structured_content["attempts"][0]["planner"] == "sampling"
    content = asked[0].messages[0].content
    kinds = [c.type for c in (content if isinstance(content, list) else [content])]
    assert kinds == ["image", "text"]


async def test_sampling_replans_after_an_invalid_plan_on_the_handshake(server, photo_file):
    verdict = {"editing_success": 9, "over_editing": 8, "naturalness": 9, "artifacts": 9, "critique": "Fine."}
    answers = [json.dumps({**PLAN, "pipeline": [{**PLAN["pipeline"][0], "model": "ADJUSTT"}, PLAN["pipeline"][1]]}), json.dumps(PLAN),
               json.dumps(verdict)]  # fmt: skip
    prompts = []

    async def sampling(context, params):
        prompts.append(params.messages[0].content)
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(text=answers[len(prompts) - 1]))

    async with Client(server, mode="legacy", sampling_callback=sampling) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "remove all colour"})
    assert not result.is_error, result.content
    attempts = result.structured_content["attempts"]
    assert len(attempts) == 2 and "unknown brick 'ADJUSTT'" in attempts[0]["error"]["message"]
    assert "unknown brick 'ADJUSTT'" in prompts[1].text
    # the host's model judged the result too: the original, the edit and the rubric
    assert [c.type for c in prompts[2]] == ["image", "image", "text"] and "remove all colour" in prompts[2][2].text
    assert result.structured_content["judge"]["name"] == "sampling" and result.structured_content["chosen_attempt"] == 2
    assert attempts[1]["verdict"]["overall"] == pytest.approx((8 * 9) ** 0.5, abs=1e-3) and attempts[1]["verdict"]["critique"] == "Fine."


async def test_rules_is_used_without_sampling_even_when_sampling_is_configured_off(settings, photo_file):

    async def sampling(context, params):
        raise AssertionError("must not sample")

    async with Client(LegoEditServer(Runtime.from_settings(changed(settings, builder="rules"))), sampling_callback=sampling) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "warmer"})
    assert not result.is_error and result.structured_content["attempts"][0]["planner"] == "rules"


@pytest.mark.parametrize("instruction", ["remove the spoon", "make the saucer blue"])
async def test_a_named_object_the_cpu_cannot_find_is_refused_not_edited_elsewhere(server, settings, instruction):
    from tests.conftest import photo

    coffee = settings.allowed_roots[0] / "coffee.png"
    Image.fromarray(photo("coffee")).save(coffee)
    async with Client(server) as client:
        result = await client.call_tool("lego_edit", {"image": str(coffee), "instruction": instruction})
    assert result.is_error
    text = result.content[0].text
    assert "without a model" in text and "mask" in text and "--mask" in text
    assert not result.structured_content or not result.structured_content.get("results")


def _saturation(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return rgb.max(axis=-1) - rgb.min(axis=-1)


@pytest.mark.parametrize(
    "instruction, check",
    [
        ("make it brigher", lambda before, after: after.mean() > before.mean() + 15),
        ("pump up the colours", lambda before, after: _saturation(after).mean() > 1.2 * _saturation(before).mean()),
        ("it's too bright", lambda before, after: after.mean() < before.mean() - 15),
        # the cat's face stays as it was, the blurred wall behind it loses its colour
        ("desaturate the backgorund", lambda before, after: np.array_equal(after[100:200, 150:300], before[100:200, 150:300])
         and _saturation(after[:80, 400:]).mean() < 0.8 * _saturation(before[:80, 400:]).mean()),
    ],
    ids=["typo", "paraphrase", "description", "background-typo"],
)
async def test_paraphrases_and_typos_edit_the_photo_the_way_they_say(server, photo_file, instruction, check):
    async with Client(server) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": instruction})
        assert not result.is_error, result.content
        after = png(await client.read_resource(result.structured_content["results"][0]["uri"]))
    assert check(np.asarray(Image.open(photo_file).convert("RGB")), after)


async def test_a_huge_instruction_is_refused_at_once_and_the_server_keeps_answering(server, photo_file):
    import time

    from builder.editor import MAX_INSTRUCTION

    async with Client(server) as client:
        start = time.perf_counter()
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "make it brighter and " * 50_000})
        assert time.perf_counter() - start < 2
        assert result.is_error and f"parameter `instruction`: is 1,050,000 characters long; at most {MAX_INSTRUCTION:,}" in result.content[0].text
        assert not (await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "warmer"})).is_error


async def test_the_rules_planner_reads_the_instruction_off_the_event_loop(registry, monkeypatch):
    import threading

    from builder.planners import lexicon
    from builder.planners.base import PlanRequest
    from builder.planners.rules import RulesPlanner

    threads = []
    real = lexicon.corrected
    monkeypatch.setattr(lexicon, "corrected", lambda *args: threads.append(threading.current_thread()) or real(*args))
    request = PlanRequest("", "make it warmer", np.zeros((8, 8, 3), np.uint8), tuple(b.spec for b in registry.available()), {"image": "Image"})
    await RulesPlanner(registry.weights).plan(request)
    assert threads and threads[0] is not threading.main_thread()
