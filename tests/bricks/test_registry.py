"""`Registry.call`: validation once against the schema, typed errors naming the parameter."""

import json
import textwrap

import anyio
import numpy as np
import pytest

from bricks import BrickFailed, InvalidInput, Registry, UnknownTool
from tests.conftest import changed, photo

DEMO_SCHEMA = {
    "name": "tint_region",
    "builder_id": "TINT",
    "kind": "edit",
    "description": "Add a constant to the red channel inside a mask.",
    "inputs": [
        {"name": "image", "type": "Image", "description": "photo"},
        {"name": "mask", "type": "Mask", "description": "where", "required": False},
        {"name": "amount", "type": "Float", "description": "how much", "required": False, "default": 10, "minimum": 0, "maximum": 100},
        {"name": "mode", "type": "Str", "description": "how", "required": False, "default": "add", "enum": ["add", "set"]},
        {"name": "steps", "type": "Int", "description": "repeat", "required": False, "default": 1, "minimum": 1},
    ],
    "outputs": [{"name": "image", "type": "Image", "description": "result"}, {"name": "note", "type": "Str", "description": "n", "optional": True}],
    "backends": {"cpu": "demo_tint:run"},
}

DEMO_MODULE = """
import numpy as np

CALLS = []

def run(image, mask, amount, mode, steps):
    CALLS.append(dict(mask=mask is not None, amount=amount, mode=mode, steps=steps, types=(type(amount), type(steps))))
    out = image.copy()
    sel = mask > 0 if mask is not None else np.ones(image.shape[:2], bool)
    red = out[..., 0].astype(int)
    red[sel] = red[sel] + int(amount) * steps if mode == "add" else int(amount)
    out[..., 0] = red.clip(0, 255)
    return {"image": out}

def broken(image, mask, amount, mode, steps):
    raise ZeroDivisionError("boom")

def wordy(image, mask, amount, mode, steps):
    return {"image": image, "score": "high"}
"""


@pytest.fixture
def demo(tmp_path, settings, monkeypatch):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "tint_region.json").write_text(json.dumps(DEMO_SCHEMA))
    (tmp_path / "demo_tint.py").write_text(textwrap.dedent(DEMO_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.from_settings(changed(settings, schema_dirs=(tmp_path / "schemas",)))
    import demo_tint

    demo_tint.CALLS.clear()
    return registry, demo_tint.CALLS


def call(registry, name, args):
    return anyio.run(registry.call, name, args)


def test_extra_schema_dir_brick_runs_with_schema_defaults(demo):
    registry, calls = demo
    img = photo("astronaut")[:64, :64]
    out = call(registry, "TINT", {"image": registry.store.put(img).uri})
    result = registry.store.get(out["image"].id)
    assert (result[..., 0].astype(int) - img[..., 0]).max() == 10
    assert calls[-1]["amount"] == 10.0 and calls[-1]["mode"] == "add" and calls[-1]["types"] == (float, int)
    assert "note" not in out  # an optional output left out


def test_null_means_not_given(demo):
    registry, calls = demo
    img = registry.store.put(photo("astronaut")[:32, :32]).uri
    call(registry, "tint_region", {"image": img, "mask": None, "amount": None})
    assert calls[-1]["mask"] is False and calls[-1]["amount"] == 10.0


@pytest.mark.parametrize(
    "args, param, reason",
    [
        ({"amount": 10}, "image", "is required but missing"),
        ({"image": "IMG", "amount": "lots"}, "amount", "must be of type number (got 'lots')"),
        ({"image": "IMG", "amount": 101}, "amount", "must be <= 100"),
        ({"image": "IMG", "amount": -1}, "amount", "must be >= 0"),
        ({"image": "IMG", "mode": "blend"}, "mode", "must be one of add, set"),
        ({"image": "IMG", "steps": 1.5}, "steps", "must be of type integer"),
        ({"image": "IMG", "strength": 1}, "strength", "unknown parameter; this tool takes: image, mask, amount, mode, steps"),
        ({"image": 7}, "image", "must be of type string"),
    ],
)
def test_bad_arguments_name_the_parameter(demo, args, param, reason):
    registry, calls = demo
    uri = registry.store.put(photo("astronaut")[:16, :16]).uri
    args = {k: uri if v == "IMG" else v for k, v in args.items()}
    with pytest.raises(InvalidInput) as err:
        call(registry, "tint_region", args)
    assert (err.value.brick, err.value.param) == ("tint_region", param)
    assert reason in str(err.value) and f"`{param}`" in str(err.value)
    assert not calls, "nothing runs on invalid input"


def test_mask_of_another_size_is_refused(demo):
    registry, calls = demo
    img = registry.store.put(photo("astronaut")[:64, :64]).uri
    mask = registry.store.put(np.full((32, 48), 255, np.uint8)).uri
    with pytest.raises(InvalidInput, match=r"`mask`: is 48x32 but `image` is 64x64"):
        call(registry, "tint_region", {"image": img, "mask": mask})
    assert not calls


def test_colour_image_given_as_mask_is_thresholded(demo):
    registry, _ = demo
    img = photo("astronaut")[:64, :64]
    rgb_mask = np.zeros((64, 64, 3), np.uint8)
    rgb_mask[:, 32:] = 200
    out = call(registry, "tint_region", {"image": registry.store.put(img).uri, "mask": registry.store.put(rgb_mask).uri, "mode": "set", "amount": 0})
    result = registry.store.get(out["image"].id)
    assert (result[:, 32:, 0] == 0).all() and (result[:, :32] == img[:, :32]).all()


def test_unknown_tool_suggests_the_closest(registry):
    with pytest.raises(UnknownTool, match="did you mean 'mask_to_box'"):
        call(registry, "mask_to_bx", {})


def test_a_crashing_brick_is_reported_without_traceback(demo, tmp_path):
    registry, _ = demo
    schema = {**DEMO_SCHEMA, "name": "broken", "builder_id": "BROKEN", "backends": {"cpu": "demo_tint:broken"}}
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "broken.json").write_text(json.dumps(schema))
    registry.load_dir(tmp_path / "more")
    uri = registry.store.put(photo("astronaut")[:8, :8]).uri
    with pytest.raises(BrickFailed, match="tool 'broken' failed: ZeroDivisionError: boom"):
        call(registry, "broken", {"image": uri})


def test_an_output_of_the_wrong_type_is_a_brick_failure(demo, tmp_path):
    registry, _ = demo
    outputs = [*DEMO_SCHEMA["outputs"][:1], {"name": "score", "type": "Float", "description": "s"}]
    schema = {**DEMO_SCHEMA, "name": "wordy", "builder_id": "WORDY", "outputs": outputs, "backends": {"cpu": "demo_tint:wordy"}}
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "wordy.json").write_text(json.dumps(schema))
    registry.load_dir(tmp_path / "w")
    uri = registry.store.put(photo("astronaut")[:8, :8]).uri
    with pytest.raises(BrickFailed, match="tool 'wordy' failed: output 'score' is 'high', not a number"):
        call(registry, "wordy", {"image": uri})


def test_missing_implementation(demo, tmp_path):
    registry, _ = demo
    (tmp_path / "x").mkdir()
    for name, target in (("no_module", "no_such_module_here:run"), ("no_attr", "demo_tint:nope")):
        schema = {**DEMO_SCHEMA, "name": name, "builder_id": name.upper().replace("_", "-"), "backends": {"cpu": target}}
        (tmp_path / "x" / f"{name}.json").write_text(json.dumps(schema))
    registry.load_dir(tmp_path / "x")
    assert registry.backend_for(registry.get("no_module")) == (None, "cpu: its implementation 'no_such_module_here' is not installed")
    uri = registry.store.put(photo("astronaut")[:8, :8]).uri
    with pytest.raises(BrickFailed, match="cannot load its cpu implementation 'demo_tint:nope'"):
        call(registry, "no_attr", {"image": uri})


def test_gpu_only_brick_is_unavailable_with_a_reason(registry, tmp_path):
    schema = {**DEMO_SCHEMA, "backends": {"gpu": "demo_tint:run"}}
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "tint_region.json").write_text(json.dumps(schema))
    registry.load_dir(tmp_path / "g")
    brick = registry.get("TINT")
    assert brick not in registry.available()
    assert registry.backend_for(brick) == (None, "gpu: the CPU backend is forced (backend=cpu)")
    with pytest.raises(InvalidInput, match="not available on this server"):
        call(registry, "TINT", {"image": "x"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("tool, args", [("adjust", {"brightness": None}), ("resize_object", {"ratio": None}),
                                        ("caption_and_canvas", {"left_ratio": None, "right_ratio": 1.5, "top_ratio": 1.5, "bottom_ratio": 1.5})])
def test_non_finite_numbers_are_caller_errors_naming_the_parameter(registry, tool, args, value):
    image = registry.store.put(np.zeros((32, 32, 3), np.uint8)).uri
    name = next(k for k, v in args.items() if v is None)
    with pytest.raises(InvalidInput, match=rf"tool '{tool}', parameter `{name}`: must be a finite number"):
        anyio.run(registry.call, tool, {"image": image, **args, name: value})
