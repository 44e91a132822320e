"""The step-by-step workflow grammar: what it accepts passes validation; invalid workflows do not match."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest

from bricks import Registry
from builder.grammar import GrammarLimits, WorkflowGrammar
from builder.number_regex import decimal_regex, int_regex
from builder.validate import validate_workflow
from builder.workflow import WorkflowInvalid, parse_workflow
from tests.builder.conftest import check

IMAGE = {"image": "Image"}
WITH_MASK = {"image": "Image", "mask": "Mask"}


def grammar(registry: Registry, inits: dict[str, str] = IMAGE, **limits: int) -> WorkflowGrammar:
    return WorkflowGrammar([b.spec for b in registry.available()], inits, "remove the dog", GrammarLimits(**limits))


def remove_dog() -> dict:
    """Segment the main object, fill it, return the fill and the segmentation."""
    return {
        "process": "remove the dog",
        "pipeline": [
            {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]", "image": "step1[image]"}},
            {"step": 2, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "step1[mask]"},
             "output": {"image": "step2[image]", "score": "step2[score]"}},
            {"result": "[step2[image], step1[image]]"},
        ],
    }  # fmt: skip


def styled() -> dict:
    """A Str output feeding a Str input, floats in range, nulls for optional inputs."""
    return {
        "process": "remove the dog",
        "pipeline": [
            {"step": 1, "model": "CMI-PRED",
             "input": {"image": "init[image]", "left_ratio": None, "right_ratio": None, "top_ratio": None, "bottom_ratio": None},
             "output": {"caption": "step1[caption]", "image": None, "mask": None}},
            {"step": 2, "model": "FLUX-STYLE", "input": {"image": "init[image]", "mask": None, "prompt": "step1[caption]", "style": "anime style"},
             "output": {"image": "step2[image]"}},
            {"step": 3, "model": "BRIGHT", "input": {"image": "step2[image]", "ratio": 0.25}, "output": {"image": "step3[image]"}},
            {"result": "[step3[image]]"},
        ],
    }  # fmt: skip


@pytest.mark.parametrize("doc", [remove_dog(), styled()], ids=["remove", "style"])
@pytest.mark.parametrize("layout", [{"separators": (",", ":")}, {"indent": 2}, {"indent": 4, "ensure_ascii": False}])
def test_valid_workflows_match_in_any_layout(cpu_registry: Registry, doc: dict, layout: dict) -> None:
    text = json.dumps(doc, **layout)
    assert check(grammar(cpu_registry), text) is None
    validate_workflow(parse_workflow(text), cpu_registry, IMAGE)  # and the validator agrees


def test_user_mask_is_citable_only_when_given(cpu_registry: Registry) -> None:
    doc = {"process": "remove the dog", "pipeline": [
        {"step": 1, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "init[mask]"},
         "output": {"image": "step1[image]", "score": None}},
        {"result": "[step1[image]]"}]}  # fmt: skip
    assert check(grammar(cpu_registry, WITH_MASK), json.dumps(doc)) is None
    assert check(grammar(cpu_registry, IMAGE), json.dumps(doc)) is not None


def _edit(doc: dict, path: str, value: object) -> dict:
    """A copy of `doc` with the value at 'pipeline.1.input.mask'-style `path` replaced (None deletes)."""
    doc = json.loads(json.dumps(doc))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = doc
    for p in parents:
        target = target[p]
    if value is None and isinstance(target, dict):
        del target[last]
    else:
        target[last] = value
    return doc


INVALID = {
    "unknown brick": ("pipeline.0.model", "SEGMENT-ALL"),
    "GPU brick not available here": ("pipeline.0.model", "RES"),
    "wrong input key": ("pipeline.1.input", {"img": "init[image]", "mask": "step1[mask]"}),
    "declared input left out": ("pipeline.1.input", {"image": "init[image]"}),
    "inputs out of order": ("pipeline.1.input", {"mask": "step1[mask]", "image": "init[image]"}),
    "forward reference": ("pipeline.0.input.image", "step2[image]"),
    "image into a mask input": ("pipeline.1.input.mask", "step1[image]"),
    "float into a mask input": ("pipeline.1.input.mask", "step2[score]"),
    "undeclared output cited": ("pipeline.1.input.mask", "step1[edges]"),
    "user mask not given": ("pipeline.1.input.mask", "init[mask]"),
    "literal in an image input": ("pipeline.1.input.image", "photo.png"),
    "wrong output key": ("pipeline.0.output", {"mask": "step1[mask]", "img": "step1[image]"}),
    "output of another step": ("pipeline.0.output.mask", "step2[mask]"),
    "wrong step number": ("pipeline.1.step", 3),
    "process rewritten": ("process", "remove a dog"),
    "result cites a float": ("pipeline.2.result", "[step2[score]]"),
    "result cites the input": ("pipeline.2.result", "[init[image]]"),
    "result as a list": ("pipeline.2.result", ["step2[image]"]),
    "empty result": ("pipeline.2.result", "[]"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_workflows_do_not_match(cpu_registry: Registry, case: str) -> None:
    path, value = INVALID[case]
    assert check(grammar(cpu_registry), json.dumps(_edit(remove_dog(), path, value))) is not None


@pytest.mark.parametrize(
    ("case", "path", "value"),
    [
        ("ratio above its maximum", "pipeline.2.input.ratio", 1.5),
        ("too many decimals", "pipeline.2.input.ratio", 0.12345),
        ("string for a float", "pipeline.2.input.ratio", "0.5"),
        ("caption into an image input", "pipeline.2.input.image", "step1[caption]"),
        ("string spelling a reference", "pipeline.1.input.style", "init[mask]"),
        ("string spelling a reference after spaces", "pipeline.1.input.style", "  step1[image]"),
        ("string too long", "pipeline.1.input.style", "x" * 81),
        ("empty string", "pipeline.1.input.style", ""),
        ("cited output written null", "pipeline.2.input.image", "step1[image]"),
    ],
)
def test_invalid_literals_do_not_match(cpu_registry: Registry, case: str, path: str, value: object) -> None:
    assert check(grammar(cpu_registry), json.dumps(_edit(styled(), path, value))) is not None


def test_strings_are_escaped_json(cpu_registry: Registry) -> None:
    good = json.dumps(_edit(styled(), "pipeline.1.input.style", 'a "quoted" \\ style / 水彩'), ensure_ascii=False)
    assert check(grammar(cpu_registry), good) is None
    raw_newline = json.dumps(styled()).replace("anime style", "anime\nstyle")
    assert check(grammar(cpu_registry), raw_newline) is not None
    unicode_escape = json.dumps(styled()).replace("anime style", "\\u0061nime")  # could spell a reference
    assert check(grammar(cpu_registry), unicode_escape) is not None


def test_whitespace_is_bounded(cpu_registry: Registry) -> None:
    text = json.dumps(remove_dog())
    assert check(grammar(cpu_registry, max_whitespace=4), text.replace(': "SOS"', ':    "SOS"')) is None
    assert check(grammar(cpu_registry, max_whitespace=4), text.replace(': "SOS"', ':     "SOS"')) is not None
    assert check(grammar(cpu_registry, max_whitespace=0), text) is not None
    assert check(grammar(cpu_registry, max_whitespace=0), json.dumps(remove_dog(), separators=(",", ":"))) is None


def test_steps_are_bounded_and_the_last_one_makes_an_image(cpu_registry: Registry) -> None:
    text = json.dumps(styled())
    assert check(grammar(cpu_registry, max_steps=3), text) is None
    assert check(grammar(cpu_registry, max_steps=2), text) is not None
    one = {"process": "remove the dog", "pipeline": [
        {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": None, "image": "step1[image]"}},
        {"result": "[step1[image]]"}]}  # fmt: skip
    assert check(grammar(cpu_registry, max_steps=1), json.dumps(one)) is not None  # its mask output may not be null
    one["pipeline"][0]["output"]["mask"] = "step1[mask]"
    assert check(grammar(cpu_registry, max_steps=1), json.dumps(one)) is None


def test_plan_length_is_bounded(cpu_registry: Registry) -> None:
    g = grammar(cpu_registry)
    assert len(json.dumps(styled(), indent=2).encode()) < g.max_bytes() < 40_000


@pytest.mark.parametrize(
    ("lo", "hi", "places"),
    [(0, 1, 3), (-1, 1, 2), (0.1, 5, 2), (1, 3, 3), (0.2, 5, 3), (-5.5, -0.25, 3), (3.14159, 3.2, 3), (-1000, 1000, 1), (0, 7, 0)],
)
def test_decimal_ranges(lo: float, hi: float, places: int) -> None:
    rx = re.compile(decimal_regex(Fraction(str(lo)), Fraction(str(hi)), places) + r"\Z")
    lo_f, hi_f = Fraction(str(lo)), Fraction(str(hi))
    candidates = {f"{sign}{i}{frac}" for sign in ("", "-") for i in [*range(40), 999, 1000, 1001]
                  for frac in ["", ".0", ".5", ".25", ".125", ".1", ".99", ".999", ".2", ".3", ".0001", ".12"]}  # fmt: skip
    for text in candidates:
        fits = lo_f <= Fraction(text) <= hi_f and len(text.partition(".")[2]) <= places
        if text.startswith("-") and Fraction(text) == 0:
            continue  # '-0' may go either way; both parse as 0
        assert bool(rx.match(text)) == fits, text


@pytest.mark.parametrize(("lo", "hi"), [(0, 0), (0, 9), (3, 117), (-20, 5), (-300, -7), (10, 10000)])
def test_integer_ranges(lo: int, hi: int) -> None:
    rx = re.compile(int_regex(lo, hi) + r"\Z")
    for n in range(-400, 10100):
        assert bool(rx.match(str(n))) == (lo <= n <= hi), n
    assert not rx.match("007") and not rx.match("-0")



def inverse_then(inputs: dict, outputs: dict, cite: str) -> dict:
    """SOS, then INVERSE on the given inputs (the others null), citing one of its outputs."""
    return {"process": "remove the dog", "pipeline": [
        {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]", "image": "step1[image]"}},
        {"step": 2, "model": "INVERSE", "input": {"mask1": None, "mask2": None, "image1": None, "image2": None, **inputs},
         "output": {"mask": None, "image": None, **outputs}},
        {"result": f"[{cite}]"}]}  # fmt: skip


MASKS, IMAGES = {"mask2": "step1[mask]"}, {"image1": "init[image]", "image2": "step1[image]"}
BOTH_OUTPUTS = {"mask": "step2[mask]", "image": "step2[image]"}


@pytest.mark.parametrize("doc, issue", [
    (inverse_then({**MASKS, "image1": "init[image]"}, {"mask": "step2[mask]"}, "step2[mask]"), "`image1`: INVERSE: give exactly one of these sets"),
    (inverse_then(IMAGES, BOTH_OUTPUTS, "step2[mask]"), "produces `mask` only when `mask2` is given"),
    (inverse_then(MASKS, BOTH_OUTPUTS, "step2[image]"), "produces `image` only when `image1` is given"),
])  # fmt: skip
def test_input_sets_and_the_outputs_they_produce(cpu_registry: Registry, doc: dict, issue: str) -> None:
    assert check(grammar(cpu_registry), json.dumps(doc)) is not None
    with pytest.raises(WorkflowInvalid, match=re.escape(issue)):
        validate_workflow(parse_workflow(doc), cpu_registry, IMAGE)


@pytest.mark.parametrize("doc", [
    inverse_then(MASKS, {"mask": "step2[mask]"}, "step2[mask]"),
    inverse_then(IMAGES, {"image": "step2[image]"}, "step2[image]"),
])  # fmt: skip
def test_each_input_set_with_its_outputs_is_accepted(cpu_registry: Registry, doc: dict) -> None:
    assert check(grammar(cpu_registry), json.dumps(doc)) is None
    validate_workflow(parse_workflow(doc), cpu_registry, IMAGE)
