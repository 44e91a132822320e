"""Acceptance of the general editors, the judge and verify-and-re-plan over MCP, on tiny models
and the CPU: listed and runnable, planned with the moment their schema is present, judged by
a fake OpenAI-compatible VLM and by the tiny Builder, re-planned when a result scores low."""

import json
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from PIL import Image

from builder.judges.base import SCORES
from server.app import LegoEditServer
from server.cli import main
from server.runtime import Runtime
from tests.bricks.gpu.tiny_editors import editors_settings, small_qwen_references, tiny_editors  # noqa: F401 - fixture
from tests.builder.conftest import cpu_registry, tiny_builder  # noqa: F401 - fixtures
from tests.builder.test_openai import completion, serve  # noqa: F401 - fixture
from tests.conftest import photo
from tests.server.conftest import MODES, watching

pytestmark = pytest.mark.anyio
SCHEMAS = Path(__file__).parents[2] / "schemas"


def verdict(score: int, critique: str = "ok") -> str:
    return json.dumps({"editing_success": score, "over_editing": 10, "naturalness": score, "artifacts": 10, "critique": critique})


def one_step(model: str, prompt: str, **more) -> dict:
    return {"process": prompt, "pipeline": [
        {"step": 1, "model": model, "input": {"image": "init[image]", "prompt": prompt, "mask": None, **more}, "output": {"image": "step1[image]"}},
        {"result": "[step1[image]]"},
    ]}  # fmt: skip


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    Image.fromarray(photo("chelsea")[::4, ::4][:72, :104]).save(path)
    return path


@pytest.fixture
def editors_server(tiny_editors, tmp_path, monkeypatch):  # noqa: F811
    small_qwen_references(monkeypatch)

    def make(**settings) -> LegoEditServer:
        return LegoEditServer(Runtime.from_settings(editors_settings(tiny_editors, tmp_path, **settings)))

    return make


def test_tools_lists_the_new_editors_as_ready_with_the_tiny_models(capsys, tiny_editors, tmp_path):  # noqa: F811
    models = tiny_editors.toml(tmp_path / "models.toml")
    assert main(["tools", "--json", "--device", "cpu", "--models-file", str(models), "--cache-dir", str(tmp_path / "c")]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, builder_id in (("qwen_image_edit", "QWEN-EDIT"), ("flux2_klein_edit", "KLEIN-EDIT")):
        assert rows[name]["builder_id"] == builder_id and rows[name]["available"] and rows[name]["backends"] == ["gpu"], rows[name]


async def test_without_their_models_the_new_editors_stay_out_of_the_builders_view(settings):
    async with Client(LegoEditServer(Runtime.from_settings(settings))) as client:
        prompt = (await client.read_resource("lego://builder/prompt")).contents[0].text
        schema = (await client.read_resource("lego://workflow/schema")).contents[0].text
    assert "QWEN-EDIT" not in prompt and "KLEIN-EDIT" not in prompt and "QWEN-EDIT" not in schema


@pytest.mark.parametrize("mode", MODES)
async def test_a_new_editor_schema_is_planned_with_the_moment_it_is_present(editors_server, tmp_path, cat, mode):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    server = editors_server(schema_dirs=(plugins,), watch_interval=0.05, builder="rules")
    async with watching(server, mode) as (client, changes):
        prompt = (await client.read_resource("lego://builder/prompt")).contents[0].text
        entry = prompt[prompt.index(".QWEN-EDIT (") :].splitlines()
        assert entry[1] == "Input: {Image[image], Str[prompt], Image[reference], Image[reference2], Mask[mask]}"
        assert "writing or replacing text in the image" in entry[3] and "Add a red scarf" in prompt  # constraint and example

        # a second Qwen-Image-Edit tool, by schema alone: listed, in the prompt and the grammar's schema, runnable
        spec = json.loads((SCHEMAS / "qwen_image_edit.json").read_text())
        spec |= {"name": "qwen_edit_fast", "builder_id": "QWEN-FAST", "description": "Qwen-Image-Edit, fewer steps."}
        (plugins / "qwen_edit_fast.json").write_text(json.dumps(spec))
        await changes.wait()
        assert "qwen_edit_fast" in {t.name for t in (await client.list_tools()).tools}
        assert ".QWEN-FAST (Qwen-Image-Edit, fewer steps.)" in (await client.read_resource("lego://builder/prompt")).contents[0].text
        schema = json.loads((await client.read_resource("lego://workflow/schema")).contents[0].text)
        workflow = one_step("QWEN-FAST", "add a hat", reference=None, reference2=None)
        assert not list(Draft202012Validator(schema).iter_errors(workflow))
        ran = await client.call_tool("run_workflow", {"workflow": workflow, "image": str(cat)})
        assert not ran.is_error, ran.content

        # the rules planner gives what it has no precise rule for to the strongest general editor
        result = await client.call_tool("lego_edit", {"image": str(cat), "instruction": "add a red scarf to the cat"})
        assert not result.is_error, result.content
        steps = [s for s in result.structured_content["workflow"]["pipeline"] if "model" in s]
        assert [s["model"] for s in steps] == ["QWEN-EDIT"] and steps[0]["input"]["prompt"] == "add a red scarf to the cat"
        assert result.structured_content["judge"]["name"] is None  # no judge configured: said, not hidden


async def test_a_logo_given_as_an_input_reaches_the_general_editor(editors_server, tmp_path, cat):
    logo = tmp_path / "logo.png"
    Image.fromarray(np.full((30, 50, 3), (200, 20, 20), np.uint8)).save(logo)
    async with Client(editors_server(builder="rules")) as client:
        result = await client.call_tool("lego_edit", {"image": str(cat), "instruction": "put this logo on the cat's collar",
                                                      "inputs": {"logo": str(logo)}})  # fmt: skip
        assert not result.is_error, result.content
        step = result.structured_content["workflow"]["pipeline"][0]
        assert step["model"] == "QWEN-EDIT" and step["input"]["reference"] == "init[logo]"
        bad = await client.call_tool("lego_edit", {"image": str(cat), "instruction": "x", "inputs": {"mask": str(logo)}})
        assert bad.is_error and "`inputs`" in bad.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_lego_edit_re_plans_when_the_judge_fails_the_first_result(editors_server, serve, cat, mode):  # noqa: F811
    """The fake endpoint is both the planner (plan 1: KLEIN-EDIT, plan 2: QWEN-EDIT) and the judge (3, then 9)."""
    plans = [one_step("KLEIN-EDIT", "make the cat wear a hat", reference=None),
             one_step("QWEN-EDIT", "make the cat wear a hat", reference=None, reference2=None)]  # fmt: skip
    asked = {"plans": [], "judged": 0}

    def reply(path, body):
        if body is None:
            return 200, {"data": [{"id": "fake-vlm"}]}
        if body["response_format"]["json_schema"]["name"] == "verdict":
            asked["judged"] += 1
            return completion(verdict(3, "The hat is missing; try the stronger editor.") if asked["judged"] == 1 else verdict(9))
        asked["plans"].append(body["messages"][0]["content"][1]["text"])
        return completion(json.dumps(plans[len(asked["plans"]) - 1]))

    endpoint = serve(reply)
    server = editors_server(builder="openai", openai_url=endpoint.url, judge="openai", judge_threshold=6.0)
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with Client(server, mode=mode) as client:
        result = await client.call_tool("lego_edit", {"image": str(cat), "instruction": "put a hat on the cat"}, progress_callback=on_progress)
    assert not result.is_error, result.content
    out = result.structured_content
    assert [a["verdict"]["overall"] for a in out["attempts"]] == [3.0, 9.0]
    assert out["chosen_attempt"] == 2 and out["workflow"]["pipeline"][0]["model"] == "QWEN-EDIT"
    assert out["judge"] == {"name": "openai", "threshold": 6.0, "attempts": 3, "seconds": 300.0}
    assert "The hat is missing; try the stronger editor." in asked["plans"][1]
    assert all(set(a["seconds"]) == {"plan", "run", "judge"} for a in out["attempts"])
    assert progress == sorted(progress) and len(progress) >= 2 * 2  # two runs of 2 denoising steps, one rising stream


@pytest.mark.parametrize("mode", MODES)
async def test_judge_edit_from_a_fake_openai_endpoint_is_schema_valid(settings, serve, cat, tmp_path, mode):  # noqa: F811
    from tests.conftest import changed

    def reply(path, body):
        return (200, {"data": [{"id": "judge-vlm"}]}) if body is None else completion("```json\n" + verdict(7, "Close; the hat floats.") + "\n```")

    endpoint = serve(reply)
    edited = tmp_path / "edited.png"
    Image.fromarray(np.asarray(Image.open(cat))[::-1].copy()).save(edited)
    async with Client(LegoEditServer(Runtime.from_settings(changed(settings, judge_url=endpoint.url))), mode=mode) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "judge_edit")
        result = await client.call_tool("judge_edit", {"image": str(cat), "edited": str(edited), "instruction": "add a hat"})
        assert not result.is_error, result.content
        Draft202012Validator(tool.output_schema).validate(result.structured_content)
        out = result.structured_content
        assert out["overall"] == 7.0 and out["critique"] == "Close; the hat floats." and set(out["scores"]) == set(SCORES)
        empty = await client.call_tool("judge_edit", {"image": str(cat), "edited": str(edited), "instruction": " "})
        assert empty.is_error and "`instruction`" in empty.content[0].text
        missing = await client.call_tool("judge_edit", {"image": str(cat), "edited": str(tmp_path / "nope.png"), "instruction": "x"})
        assert missing.is_error and "`edited`" in missing.content[0].text


async def test_judge_edit_by_the_tiny_builder_under_its_grammar(settings, tiny_builder, cat):  # noqa: F811
    from tests.conftest import changed

    runtime = Runtime.from_settings(changed(settings, builder_model=str(tiny_builder), builder_subfolder="Builder", device="cpu"))
    async with Client(LegoEditServer(runtime)) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "judge_edit")
        result = await client.call_tool("judge_edit", {"image": str(cat), "edited": str(cat), "instruction": "add a hat"})
    assert not result.is_error, result.content
    Draft202012Validator(tool.output_schema).validate(result.structured_content)
    assert result.structured_content["judge"] == "transformers"


async def test_judge_edit_without_a_judge_says_how_to_get_one(settings, cat):
    async with Client(LegoEditServer(Runtime.from_settings(settings))) as client:
        result = await client.call_tool("judge_edit", {"image": str(cat), "edited": str(cat), "instruction": "add a hat"})
    assert result.is_error and "--judge-url" in result.content[0].text


