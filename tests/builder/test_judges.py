"""The judges: the verdict's rubric and checks, the tiny transformers judge under its grammar,
and the openai judge against a real chat-completions server on loopback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from bricks.gpu.config import ModelConfig
from bricks.gpu.manager import ModelManager
from builder.judges.base import VERDICT_SCHEMA, JudgeRequest, JudgeUnavailable, parse_verdict
from builder.judges.openai_compat import OpenAIJudge
from builder.judges.select import Judges, choose_judge
from builder.settings import PlanningSettings
from tests.builder.test_openai import completion, sent_image, serve  # noqa: F401 - fixture
from tests.conftest import photo

GOOD = {"editing_success": 8, "over_editing": 6, "naturalness": 9, "artifacts": 7, "critique": "The cup is blue; the saucer changed too."}


@pytest.fixture(scope="module")
def request_() -> JudgeRequest:
    source = photo("coffee")[::4, ::4]
    edited = source.copy()
    edited[..., 2] = 255 - edited[..., 2]
    return JudgeRequest(source, edited, "make the cup blue")


def test_scores_combine_as_viescore() -> None:
    verdict = parse_verdict(json.dumps(GOOD), "test")
    assert (verdict.semantics, verdict.quality) == (6, 7)  # each the lower of its pair
    assert verdict.overall == pytest.approx(math.sqrt(42))
    shown = verdict.as_dict()
    assert shown["semantic_consistency"] == 6 and shown["perceptual_quality"] == 7 and shown["overall"] == round(math.sqrt(42), 3)
    assert "saucer" in verdict.feedback() and "6.5/10" in verdict.feedback()


def test_an_answer_in_prose_or_a_fence_is_read() -> None:
    text = "Here is my verdict:\n```json\n" + json.dumps({**GOOD, "artifacts": 7.0}) + "\n```"
    assert parse_verdict(text, "test").artifacts == 7


@pytest.mark.parametrize(("answer", "says"), [
    ("I like it", "did not answer a JSON object"),
    (json.dumps({**GOOD, "naturalness": 11}), "naturalness=11"),
    (json.dumps({**GOOD, "editing_success": "8"}), "editing_success='8'"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "over_editing"}), "over_editing=None"),
    (json.dumps({**GOOD, "critique": 3}), "critique is not text"),
])  # fmt: skip
def test_bad_answers_are_unavailable_with_the_reason(answer: str, says: str) -> None:
    with pytest.raises(JudgeUnavailable, match=says):
        parse_verdict(answer, "test")


def test_the_tiny_transformers_judge_answers_schema_valid_json(tiny_builder: Path, request_: JudgeRequest) -> None:
    """Random weights, yet every answer is a verdict: the grammar holds the decoding to the schema."""
    import anyio

    from bricks.gpu.mllm import ask
    from builder.judges.mllm import GRAMMAR, MAX_TOKENS

    config = ModelConfig.load(device="cpu").with_builder(str(tiny_builder), "Builder")
    judge = Judges(PlanningSettings(judge="transformers"), ModelManager(config)).get("transformers")
    verdict = anyio.run(judge.judge, request_)
    assert verdict.judge == "transformers" and 0 <= verdict.overall <= 10 and verdict.seconds > 0
    text, _ = ask(judge.models, request_.source, request_.prompt(), more=(request_.edited,), grammar=GRAMMAR,
                  max_new_tokens=MAX_TOKENS, what="judge_edit")  # fmt: skip
    jsonschema.validate(json.loads(text), VERDICT_SCHEMA)
    assert judge.models.loads["builder"] == 1  # shared with the planner and the bricks, loaded once


def test_a_missing_judge_model_is_unavailable(tmp_path: Path, request_: JudgeRequest) -> None:
    import anyio

    config = ModelConfig.load(device="cpu").with_builder(str(tmp_path / "nothing"))
    with pytest.raises(JudgeUnavailable, match="cannot run"):
        anyio.run(Judges(PlanningSettings(), ModelManager(config)).get("transformers").judge, request_)


@pytest.mark.anyio
async def test_the_openai_judge_sends_both_images_and_holds_the_answer_to_the_schema(serve, request_: JudgeRequest) -> None:  # noqa: F811
    endpoint = serve(lambda path, body: completion(json.dumps(GOOD)))
    verdict = await OpenAIJudge(endpoint.url, model="judge-vlm", api_key="sk-j").judge(request_)
    assert verdict.overall == pytest.approx(math.sqrt(42)) and verdict.judge == "openai (lego-builder)"
    (body,) = endpoint.chat_bodies()
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"] and "make the cup blue" in parts[2]["text"]
    _, original = sent_image({"messages": [{"content": parts[:1]}]})
    assert original.size == (request_.source.shape[1], request_.source.shape[0])
    assert body["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA and body["model"] == "judge-vlm"
    assert endpoint.requests[0][1]["Authorization"] == "Bearer sk-j"


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "says"), [
    (lambda path, body: completion("no idea"), "did not answer a JSON object"),
    (lambda path, body: (503, {"error": {"message": "overloaded"}}), "answered 503: overloaded"),
])  # fmt: skip
async def test_openai_judge_failures_are_unavailable(serve, request_: JudgeRequest, reply, says: str) -> None:  # noqa: F811
    endpoint = serve(reply)
    with pytest.raises(JudgeUnavailable, match=says):
        await OpenAIJudge(endpoint.url, model="m").judge(request_)


@pytest.mark.parametrize(("settings", "builder", "can_sample", "chosen"), [
    ({}, True, True, "transformers"),
    ({"openai_url": "http://h/v1"}, False, True, "openai"),
    ({"judge_url": "http://j/v1"}, False, False, "openai"),
    ({}, False, True, "sampling"),
    ({}, False, False, "off"),
    ({"judge": "off"}, True, True, "off"),
])  # fmt: skip
def test_auto_picks_the_judge_at_hand(settings: dict, builder: bool, can_sample: bool, chosen: str) -> None:
    config = ModelConfig.load().with_builder("some/builder" if builder else None)
    assert choose_judge(PlanningSettings(**settings), config, can_sample=can_sample) == chosen


def test_the_judge_endpoint_defaults_to_the_planners() -> None:
    judges = Judges(PlanningSettings(openai_url="http://h:1/v1", openai_model="b", openai_api_key="k"), ModelManager(ModelConfig()))
    judge = judges.get("openai")
    assert (judge.endpoint.base_url, judge.endpoint.model, judge.endpoint.api_key) == ("http://h:1/v1", "b", "k")
    own = Judges(PlanningSettings(openai_url="http://h:1/v1", openai_api_key="k", judge_url="http://j:2/v1"), ModelManager(ModelConfig()))
    assert (own.get("openai").endpoint.base_url, own.get("openai").endpoint.api_key) == ("http://j:2/v1", None)
    with pytest.raises(JudgeUnavailable, match="--judge off"):
        Judges(PlanningSettings(judge="off"), ModelManager(ModelConfig())).get("off")


def test_grey_images_can_be_judged() -> None:
    grey = np.full((32, 40), 128, np.uint8)
    request = JudgeRequest(grey, grey, "brighter")
    assert "brighter" in request.prompt()


@pytest.mark.anyio
async def test_a_cancelled_judgement_stops_at_the_next_token(tiny_builder: Path, request_: JudgeRequest) -> None:
    import anyio

    config = ModelConfig.load(device="cpu").with_builder(str(tiny_builder), "Builder")
    judge = Judges(PlanningSettings(), ModelManager(config)).get("transformers")
    await judge.judge(request_)  # loaded and warm
    tokens = []
    model = judge.models.load("builder", None)[0]
    hook = model.lm_head.register_forward_hook(lambda *_: tokens.append(1))
    try:
        await judge.judge(request_)
        whole = len(tokens)
        tokens.clear()
        with anyio.move_on_after(0.05) as scope:
            await judge.judge(request_)
        assert scope.cancelled_caught
        stopped = len(tokens)
        await anyio.sleep(0.3)
        assert len(tokens) == stopped < whole  # stopped part-way, and nothing ran on after the cancel
    finally:
        hook.remove()
