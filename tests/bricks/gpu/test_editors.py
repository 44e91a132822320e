"""QWEN-EDIT and KLEIN-EDIT on tiny random-weight pipelines, on the CPU, through Registry.call
and the real loader (the pipelines are saved, then loaded by `from_pretrained`)."""

from __future__ import annotations

import numpy as np
import pytest

from bricks import InvalidInput
from tests.bricks.gpu.tiny_editors import editors_run, tiny_editors  # noqa: F401 - fixtures
from tests.conftest import photo

EDITORS = ["qwen_image_edit", "flux2_klein_edit"]


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return photo("coffee")[::5, ::5][:72, :104]  # 72x104: not multiples of 16, so the working size differs


@pytest.mark.parametrize("brick", EDITORS)
def test_whole_image_edit_at_the_input_size(editors_run, coffee, brick):
    registry = editors_run.registry
    assert registry.backend_for(registry.get(brick)) == ("gpu", "")
    out = editors_run(brick, image=coffee, prompt="make the cup blue")["image"]
    assert out.shape == coffee.shape and out.dtype == np.uint8
    assert (out != coffee).mean() > 0.5  # redrawn
    assert registry.models.loads == {registry.get(brick).spec.models[0]: 1}


@pytest.mark.parametrize("brick", EDITORS)
def test_pixels_outside_the_mask_are_kept_exactly(editors_run, coffee, brick):
    mask = np.zeros(coffee.shape[:2], np.uint8)
    mask[10:50, 20:70] = 255
    out = editors_run(brick, image=coffee, prompt="put a spoon in the cup", mask=mask)["image"]
    assert (out[mask == 0] == coffee[mask == 0]).all()
    assert (out[mask > 0] != coffee[mask > 0]).any()


def test_reference_images_reach_qwen(editors_run, coffee):
    logo = np.zeros((40, 60, 4), np.uint8)
    logo[10:30, 15:45] = (200, 30, 30, 255)  # a red logo on a transparent background
    plain = editors_run("qwen_image_edit", image=coffee, prompt="put the logo on the cup")["image"]
    one = editors_run("qwen_image_edit", image=coffee, prompt="put the logo on the cup", reference=logo)["image"]
    two = editors_run("qwen_image_edit", image=coffee, prompt="put the logo on the cup", reference=logo,
                      reference2=photo("chelsea")[::6, ::6])["image"]  # fmt: skip
    assert one.shape == two.shape == coffee.shape
    assert (one != plain).any() and (two != one).any()  # each reference conditions the result


def test_klein_takes_images_below_its_minimum_side(editors_run):
    small = photo("astronaut")[::12, ::16][:40, :30]  # 40x30: klein refuses anything under 64 px a side
    out = editors_run("flux2_klein_edit", image=small, prompt="make it night", reference=photo("chelsea")[:20, :50])["image"]
    assert out.shape == small.shape


@pytest.mark.anyio
@pytest.mark.parametrize(("brick", "steps"), [("qwen_image_edit", 6), ("flux2_klein_edit", 4)])
async def test_each_step_reaches_an_mcp_client_and_a_cancel_stops_at_the_next(tiny_editors, tmp_path, monkeypatch, coffee, brick, steps):
    """Klein runs at most the 4 steps it is distilled for, whatever is configured (here 6)."""
    import anyio
    from mcp import Client

    from server.app import LegoEditServer
    from server.runtime import Runtime
    from tests.bricks.gpu.tiny_editors import editors_settings, small_qwen_references

    small_qwen_references(monkeypatch)
    settings = editors_settings(tiny_editors, tmp_path)
    settings.bricks.models_file.write_text(settings.bricks.models_file.read_text().replace("steps = 2", "steps = 6"))
    runtime = Runtime.from_settings(settings)
    args = {"image": runtime.store.put(coffee).uri, "prompt": "add a spoon"}
    seen = []

    async def on_progress(done, total, message):
        seen.append((done, total, message))

    async with Client(LegoEditServer(runtime)) as client:
        result = await client.call_tool(brick, args, progress_callback=on_progress)
        assert not result.is_error, result.content
        assert [(d, t) for d, t, _ in seen] == [(n, steps) for n in range(1, steps + 1)]
        assert f"{brick}: denoising step 1 of {steps}" in seen[0][2]

        pipe = runtime.models.load(runtime.registry.get(brick).spec.models[0], None)  # loaded: no loader needed
        calls = []
        hook = pipe.transformer.register_forward_hook(lambda *_: calls.append(1))
        try:
            with anyio.CancelScope() as scope:

                async def cancel(done, total, message):
                    scope.cancel()

                await client.call_tool(brick, args, progress_callback=cancel)
            assert scope.cancelled_caught
            with anyio.fail_after(30):  # the server's worker stops at its next step and frees the device queue
                while True:
                    acquired = runtime.models._queues[str(runtime.models.device)].acquire(blocking=False)
                    if acquired:
                        runtime.models._queues[str(runtime.models.device)].release()
                        break
                    await anyio.sleep(0.05)
            per_step = 2 if brick == "qwen_image_edit" else 1  # Qwen's true guidance: two passes a step
            assert len(calls) <= 2 * per_step < steps * per_step
            calls.clear()
            assert not (await client.call_tool(brick, args)).is_error
            assert len(calls) == steps * per_step
        finally:
            hook.remove()


@pytest.mark.parametrize("brick", EDITORS)
def test_bad_inputs_name_the_parameter(editors_run, coffee, brick):
    with pytest.raises(InvalidInput) as err:
        editors_run(brick, image=coffee, prompt="add a hat", mask=np.zeros(coffee.shape[:2], np.uint8))
    assert err.value.param == "mask"
    with pytest.raises(InvalidInput) as err:
        editors_run(brick, image=coffee, prompt="   ")
    assert err.value.param == "prompt"
    with pytest.raises(InvalidInput) as err:
        editors_run(brick, image=coffee, prompt="add a hat", mask=np.full((10, 10), 255, np.uint8))
    assert err.value.param == "mask" and "must match" in str(err.value)
