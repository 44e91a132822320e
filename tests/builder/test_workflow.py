"""Parsing the upstream format, and every class of validation error, each structured."""

import copy
import json

import pytest

from builder.prompt import load_examples
from builder.validate import validate_workflow
from builder.workflow import Ref, WorkflowInvalid, parse_workflow

REMOVE_DOG = {
    "process": "remove the dog",
    "pipeline": [
        {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]", "image": None}},
        {"step": 2, "model": "fast_inpaint", "input": {"image": "init[image]", "mask": "step1[mask]"}, "output": {"image": "step2[image]", "score": "step2[score]"}},
        {"result": "[step2[image]]"},
    ],
}
INITS = {"image": "Image"}


def test_upstream_format_parses_and_round_trips():
    wf = parse_workflow(json.dumps(REMOVE_DOG))
    assert [s.brick for s in wf.steps] == ["SOS", "fast_inpaint"]  # paper ids and MCP names both work
    assert wf.steps[1].inputs["mask"] == Ref(1, "mask") and wf.steps[0].outputs["image"] is None
    assert wf.result == (Ref(2, "image"),)
    assert parse_workflow(wf.to_json()) == wf


@pytest.mark.parametrize("result", ["[step1[image], step2[image]]", ["step1[image]", "step2[image]"], "step1[image], step2[image]"])
def test_result_forms(result):
    data = copy.deepcopy(REMOVE_DOG)
    data["pipeline"][-1] = {"result": result}
    assert parse_workflow(data).result == (Ref(1, "image"), Ref(2, "image"))


@pytest.mark.parametrize("example", load_examples(), ids=lambda e: e.source)
def test_worked_examples_validate_against_the_full_catalogue(example, registry):
    inits = {"image": "Image", **({"mask": "Mask"} if example.mask else {}), **dict.fromkeys(example.images, "Image")}
    warnings = validate_workflow(parse_workflow(example.workflow), registry, inits, check_available=False)
    assert warnings == []


def broken(mutate) -> dict:
    data = copy.deepcopy(REMOVE_DOG)
    mutate(data["pipeline"])
    return data


def set_input(step, key, value):
    def mutate(p):
        p[step - 1]["input"][key] = value
    return mutate


CASES = [
    ("unknown brick", lambda p: p[0].update(model="SOSS"), 1, None, "unknown brick 'SOSS'; did you mean 'SOS'?"),
    ("missing step", set_input(2, "mask", "step7[mask]"), 2, "mask", "refers to step 7, which does not exist"),
    ("later step", lambda p: (p[0]["input"].update(image="step2[image]"), p[1]["input"].update(mask="init[image]")), 1, "image", "does not come before step 1"),
    ("undeclared output", set_input(2, "mask", "step1[outline]"), 2, "mask", "step 1 (SOS) has no output 'outline'"),
    ("missing init", set_input(2, "mask", "init[mask]"), 2, "mask", "init[mask] was not given (the user gave no mask)"),
    ("type mismatch", lambda p: (p[0]["output"].update(image="step1[image]"), p[1]["input"].update(mask="step1[image]")), 2, "mask", "step1[image] is of type Image but FASTINPAINT needs Mask"),
    ("required missing", lambda p: p[1]["input"].pop("mask"), 2, "mask", "required input of FASTINPAINT is missing"),
    ("unknown input", set_input(2, "strength", 0.5), 2, "strength", "FASTINPAINT has no input 'strength'"),
    ("duplicate steps", lambda p: p[1].update(step=1, output={"image": "step1[image]"}), 1, None, "step number 1 is used 2 times"),
    ("bad literal", set_input(1, "image", 3), 1, "image", "expected a reference or an image URI"),
    ("null output cited", lambda p: p[2].update(result="[step1[image]]"), None, "result", "step 1 writes this output as null"),
    ("non-image result", lambda p: p[2].update(result="[step2[score]]"), None, "result", "the result lists images or masks only"),
]


@pytest.mark.parametrize("name, mutate, step, key, reason", CASES, ids=[c[0] for c in CASES])
def test_each_validation_error_is_structured(registry, name, mutate, step, key, reason):
    with pytest.raises(WorkflowInvalid) as err:
        validate_workflow(parse_workflow(broken(mutate)), registry, INITS)
    matching = [i for i in err.value.issues if reason in i.reason]
    assert matching, [str(i) for i in err.value.issues]
    assert (matching[0].step, matching[0].input) == (step, key)


def test_cycle_is_named(registry):
    def mutate(p):
        p[0].update(model="ADJUST", input={"image": "step2[image]"}, output={"image": "step1[image]"})
        p[1]["input"]["image"] = "step1[image]"
    with pytest.raises(WorkflowInvalid, match="forms a cycle"):
        validate_workflow(parse_workflow(broken(mutate)), registry, INITS)


@pytest.mark.parametrize("text, reason", [
    ("{not json", "not valid JSON"),
    ('{"steps": []}', "expected an object with a 'pipeline' list"),
    ('{"pipeline": [{"step": 1, "model": "SOS", "input": {}, "output": {}}]}', "exactly one {'result': ...} element, found 0"),
    ('{"pipeline": [{"result": "[]"}]}', "the result is empty"),
    ('{"pipeline": [{"step": 0, "model": "SOS"}, {"result": "[step1[mask]]"}]}', "'step' must be a positive integer"),
    ('{"pipeline": [{"step": 1, "model": "SOS", "output": {"mask": "step2[mask]"}}, {"result": "[step1[mask]]"}]}', "output must be 'step1[mask]' or null"),
])
def test_shape_errors(text, reason):
    with pytest.raises(WorkflowInvalid, match=reason.replace("[", r"\[").replace("{", r"\{").replace("(", r"\(")):
        parse_workflow(text)


def test_unused_outputs_are_warnings(registry):
    warnings = validate_workflow(parse_workflow(REMOVE_DOG), registry, INITS)
    assert [(w.step, w.input) for w in warnings] == [(2, "score")]


def test_a_workflow_nested_100k_deep_is_a_clear_error():
    from builder.workflow import MAX_DEPTH

    for text in ("[" * 100_000 + "]" * 100_000, json.dumps({"pipeline": [{"step": 1, "input": {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}]})):
        with pytest.raises(WorkflowInvalid, match=f"parameter `workflow`: invalid workflow: nested too deeply .*{MAX_DEPTH}"):
            parse_workflow(text)


def test_a_workflow_has_at_most_max_steps():
    from builder.workflow import MAX_STEPS

    steps = [{"step": i, "model": "BBOX", "input": {"mask": "init[mask]"}, "output": {"mask": f"step{i}[mask]"}} for i in range(1, MAX_STEPS + 2)]
    with pytest.raises(WorkflowInvalid, match=f"has {MAX_STEPS + 1} steps; at most {MAX_STEPS}"):
        parse_workflow({"pipeline": [*steps, {"result": "[step1[mask]]"}]})


def test_cycle_finding_is_linear_in_the_steps():
    import time

    from builder.validate import _cyclic_steps
    from builder.workflow import Step

    n = 20_000  # a chain, then one cycle of three at its end; quadratic search takes minutes here
    steps = [Step(i, "BBOX", {"mask": Ref(i - 1, "mask") if i > 1 else Ref(None, "mask")}, {"mask": Ref(i, "mask")}) for i in range(1, n + 1)]
    steps += [Step(n + 1, "BBOX", {"mask": Ref(n + 3, "mask")}, {}), Step(n + 2, "BBOX", {"mask": Ref(n + 1, "mask")}, {}),
              Step(n + 3, "BBOX", {"mask": Ref(n + 2, "mask")}, {}), Step(n + 4, "BBOX", {"mask": Ref(n + 4, "mask")}, {})]
    start = time.perf_counter()
    assert _cyclic_steps(tuple(steps)) == {n + 1, n + 2, n + 3, n + 4}
    assert time.perf_counter() - start < 2
