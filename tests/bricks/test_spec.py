"""The schema files: every built-in one obeys the meta-schema and matches its implementation."""

import importlib
import importlib.resources
import inspect
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bricks import Registry, SchemaError
from bricks.backends import _installed
from bricks.spec import load_spec

SCHEMA_FILES = sorted(Path(str(importlib.resources.files("schemas"))).glob("*.json"))


def test_there_are_schema_files():
    assert len(SCHEMA_FILES) >= 13


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_schema_file_contract(path):
    spec = load_spec(path)
    assert path.stem == spec.name, "one file per brick, named after its tool"
    for backend, target in spec.backends.items():
        module, _, attr = target.partition(":")
        if not _installed(module, None):
            assert backend == "gpu", "a CPU backend must always be installed"
            continue  # a GPU brick whose implementation is not written yet: listed as unavailable
        fn = getattr(importlib.import_module(module), attr)
        params = inspect.signature(fn).parameters
        declared = [p.name for p in spec.inputs]
        assert [n for n in params if n != "ctx"] == declared, f"{backend}: signature must list the schema's inputs in order"
        assert all(p.default is inspect.Parameter.empty for p in params.values()), "defaults live in the schema only"


def test_rendered_schemas_are_valid_json_schema(registry):
    for brick in registry.all():
        jsonschema.Draft202012Validator.check_schema(brick.input_schema)
        jsonschema.Draft202012Validator.check_schema(brick.output_schema)


def test_builder_ids_and_names_are_unique(registry):
    specs = [b.spec for b in registry.all()]
    assert len({s.builder_id for s in specs}) == len({s.name for s in specs}) == len(SCHEMA_FILES)


def test_cpu_bricks_do_not_import_torch():
    modules = sorted({load_spec(p).backends["cpu"].partition(":")[0] for p in SCHEMA_FILES if "cpu" in load_spec(p).backends})
    code = f"import sys, server, server.app; [__import__(m) for m in {modules!r}]; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


GOOD = {
    "name": "demo_brick",
    "builder_id": "DEMO",
    "kind": "edit",
    "description": "A demo.",
    "inputs": [{"name": "image", "type": "Image", "description": "in"}],
    "outputs": [{"name": "image", "type": "Image", "description": "out"}],
    "backends": {"cpu": "demo:run"},
}


OPTIONAL_PAIR = [{"name": n, "type": "Mask", "description": "d", "required": False} for n in ("a", "b")]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"nmae": "x"}, "nmae: Extra inputs are not permitted"),
        ({"name": "Bad Name"}, "name: String should match pattern"),
        ({"kind": "filter"}, "kind: Input should be 'predict' or 'edit'"),
        ({"backends": {"cpu": "no_colon"}}, "must be 'module:attribute'"),
        ({"outputs": []}, "outputs: Tuple should have at least 1 item"),
        ({"inputs": [{"name": "x", "type": "Float", "description": "d", "required": False, "default": 2, "maximum": 1}]}, "out of range"),
        ({"inputs": [{"name": "x", "type": "Str", "description": "d", "minimum": 0}]}, "only apply to Float and Int"),
        ({"inputs": [GOOD["inputs"][0], GOOD["inputs"][0]]}, "duplicate input names"),
        ({"backends": {}}, "a schema file names at least one backend"),
        ({"input_sets": [["image"], []]}, "input_sets: 'image' is not an optional input"),
        ({"inputs": OPTIONAL_PAIR, "input_sets": [["a", "b"]]}, "give two or more different sets"),
        ({"inputs": OPTIONAL_PAIR, "input_sets": [["a"], ["a"]]}, "give two or more different sets"),
        ({"outputs": [{"name": "image", "type": "Image", "description": "o", "when_given": "a"}]}, "when_given needs optional: true"),
        ({"outputs": [{"name": "image", "type": "Image", "description": "o", "optional": True, "when_given": "image"}]},
         "when_given 'image' is not an input of input_sets"),
        ({"notes": {"gpu": "Any scene."}}, "notes: ['gpu'] not among the backends"),
        ({"inputs": [{"name": "x", "type": "Float"}]}, "input 'x': a Float input needs a description"),
    ],
)
def test_bad_schema_file_names_its_path_and_reason(tmp_path, change, reason):
    path = tmp_path / "demo_brick.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(SchemaError) as err:
        Registry.load_dir(Registry.__new__(Registry), tmp_path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_unparsable_file(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SchemaError, match=r"broken\.json: not valid JSON"):
        load_spec(tmp_path / "broken.json")


def test_name_and_builder_id_collisions_are_refused(registry, tmp_path):
    (tmp_path / "mask_to_box.json").write_text(json.dumps({**GOOD, "name": "mask_to_box"}))
    with pytest.raises(SchemaError, match="'mask_to_box' is already taken by tool 'mask_to_box'"):
        registry.load_dir(tmp_path)
    (tmp_path / "mask_to_box.json").write_text(json.dumps({**GOOD, "builder_id": "BBOX"}))
    with pytest.raises(SchemaError, match="'BBOX' is already taken by tool 'mask_to_box'"):
        registry.load_dir(tmp_path)


@pytest.mark.parametrize("given, culprit, got", [
    ({"mask2", "image1"}, "image1", "got (mask2, image1)"),
    ({"image1"}, "image2", "got (image1)"),
    (set(), "mask2", "got none"),
])  # fmt: skip
def test_input_sets_name_the_input_to_fix(registry, given, culprit, got):
    spec = registry.get("INVERSE").spec
    assert spec.input_set_problem({"mask2"}) is None and spec.input_set_problem({"mask1", "mask2"}) is None
    param, reason = spec.input_set_problem(given)
    assert param == culprit and reason.endswith(got)
    assert "(mask2) or (mask1, mask2) or (image1, image2)" in reason
    assert registry.get("CMI-PRED").spec.input_sets_text() == "(left_ratio, right_ratio, top_ratio, bottom_ratio) or none of them"
