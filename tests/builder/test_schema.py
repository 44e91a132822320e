"""The workflow JSON Schema: accepts the worked examples, refuses malformed workflows, stays portable."""

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from bricks import Registry
from builder.prompt import load_examples
from builder.schema import workflow_json_schema
from server.settings import Settings

EXAMPLES = {e.source: e for e in load_examples()}
REMOVE = EXAMPLES["segment_and_remove.json"].workflow  # RES -> FASTINPAINT -> FLUX-INPAINT


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> list:
    """The full catalogue, GPU-only bricks included."""
    return [b.spec for b in Registry.from_settings(Settings(cache_dir=tmp_path_factory.mktemp("cache"), backend="cpu")).all()]


@pytest.fixture(scope="module")
def validator(specs: list) -> Draft202012Validator:
    return Draft202012Validator(workflow_json_schema(specs))


def test_schema_is_valid_draft_2020_12(specs: list) -> None:
    for inits in (None, {"image": "Image"}, {"image": "Image", "mask": "Mask", "reference": "Image"}):
        Draft202012Validator.check_schema(workflow_json_schema(specs, inits))
    assert len(EXAMPLES) == 12


@pytest.mark.parametrize("source", sorted(EXAMPLES))
def test_worked_examples_validate(source: str, validator: Draft202012Validator) -> None:
    assert not list(validator.iter_errors(EXAMPLES[source].workflow))


@pytest.mark.parametrize("source", sorted(EXAMPLES))
def test_worked_examples_validate_with_their_inits(source: str, specs: list) -> None:
    example = EXAMPLES[source]
    inits = {"image": "Image", **({"mask": "Mask"} if example.mask else {}), **dict.fromkeys(example.images, "Image")}
    assert Draft202012Validator(workflow_json_schema(specs, inits)).is_valid(example.workflow)


def broken(change) -> dict:  # noqa: ANN001 - a function editing the workflow in place
    workflow = copy.deepcopy(REMOVE)
    change(workflow)
    return workflow


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda w: w["pipeline"][0].update(model="MAGIC"), id="unknown model"),
        pytest.param(lambda w: w["pipeline"][0]["input"].update(strength=0.5), id="extra input key"),
        pytest.param(lambda w: w["pipeline"][0]["input"].pop("prompt"), id="required input missing"),
        pytest.param(lambda w: w["pipeline"][1]["input"].update(mask="step1.mask"), id="bad reference text"),
        pytest.param(lambda w: w["pipeline"][1]["input"].update(mask="init(mask)"), id="bad init reference"),
        pytest.param(lambda w: w["pipeline"][1]["input"].update(mask="step1[caption]"), id="reference of the wrong type"),
        pytest.param(lambda w: w["pipeline"][2]["input"].update(score=1.5), id="number out of range"),
        pytest.param(lambda w: w["pipeline"][2]["input"].update(score="high"), id="string for a number"),
        pytest.param(lambda w: w["pipeline"][0]["output"].update(mask="step1[image]"), id="output under another key"),
        pytest.param(lambda w: w["pipeline"][0]["output"].update(extra="step1[extra]"), id="unknown output"),
        pytest.param(lambda w: w["pipeline"][0].update(step=0), id="step 0"),
        pytest.param(lambda w: w["pipeline"][0].update(note="hi"), id="extra step key"),
        pytest.param(lambda w: w["pipeline"][3].update(result="step3[image]"), id="result without brackets"),
        pytest.param(lambda w: w["pipeline"][3].update(result="[step2[score]]"), id="result not an image"),
        pytest.param(lambda w: w["pipeline"][0]["input"].update(prompt="x" * 201), id="prompt too long"),
        pytest.param(lambda w: w["pipeline"][0]["input"].update(prompt="a\ndog"), id="control character"),
        pytest.param(lambda w: w.pop("process"), id="no process"),
    ],
)
def test_malformed_workflows_are_refused(change, validator: Draft202012Validator) -> None:  # noqa: ANN001
    assert not validator.is_valid(broken(change))


def test_inits_narrow_the_initial_inputs(specs: list) -> None:
    """Without a user mask `init[mask]` is not offered; a Mask still feeds an Image input."""
    without = Draft202012Validator(workflow_json_schema(specs, {"image": "Image"}))
    masked = EXAMPLES["masked_subject_style.json"].workflow
    assert not without.is_valid(masked)
    with_mask = Draft202012Validator(workflow_json_schema(specs, {"image": "Image", "mask": "Mask"}))
    assert with_mask.is_valid(broken(lambda w: w["pipeline"][1]["input"].update(image="init[mask]")))
    assert not with_mask.is_valid(broken(lambda w: w["pipeline"][1]["input"].update(mask="init[image]")))


def test_optional_inputs_may_be_null_or_left_out(validator: Draft202012Validator) -> None:
    step = {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "gamma": None, "warmth": 0.2}, "output": {}}
    assert validator.is_valid({"process": "", "pipeline": [step, {"result": "[step1[image]]"}]})


def test_only_the_given_bricks_appear(specs: list) -> None:
    cpu = [s for s in specs if "cpu" in s.backends]
    models = {a["properties"]["model"]["const"] for a in workflow_json_schema(cpu)["properties"]["pipeline"]["items"]["anyOf"] if "model" in a["properties"]}
    assert models == {s.builder_id for s in cpu}
    assert not Draft202012Validator(workflow_json_schema(cpu)).is_valid(REMOVE)  # RES is GPU-only


def test_portable_keywords_only(specs: list) -> None:
    """No keyword that llguidance, xgrammar or OpenAI's structured outputs refuse or ignore."""
    text = json.dumps(workflow_json_schema(specs))
    for keyword in ('"oneOf"', '"$ref"', '"contains"', '"maxLength"', '"format"', "(?:", "\\\\d", "\\\\w"):
        assert keyword not in text


def test_llguidance_compiles_it(specs: list) -> None:
    """vLLM's `guidance` backend is llguidance: the schema must compile without warnings there."""
    llguidance = pytest.importorskip("llguidance")
    for inits in (None, {"image": "Image", "mask": "Mask"}):
        grammar = llguidance.LLMatcher.grammar_from_json_schema(workflow_json_schema(specs, inits))
        assert llguidance.LLMatcher.validate_grammar_with_warnings(grammar) == (False, [])


def test_input_sets_are_one_step_schema_each(validator: Draft202012Validator) -> None:
    def inverse(inputs: dict, outputs: dict) -> dict:
        step = {"step": 1, "model": "INVERSE", "input": inputs, "output": outputs}
        return {"process": "p", "pipeline": [step, {"result": "[step1[mask]]"}]}

    assert not list(validator.iter_errors(inverse({"mask2": "init[mask]"}, {"mask": "step1[mask]", "image": None})))
    assert not list(validator.iter_errors(inverse({"image1": "init[image]", "image2": "init[image]"}, {"image": "step1[image]"})))
    assert list(validator.iter_errors(inverse({"mask2": "init[mask]", "image1": "init[image]"}, {"mask": "step1[mask]"})))
    assert list(validator.iter_errors(inverse({"image1": "init[image]"}, {"image": "step1[image]"})))  # half a pair
    assert list(validator.iter_errors(inverse({"mask2": "init[mask]"}, {"image": "step1[image]"})))  # not produced
