"""FLUX-CBG on its GPU backend (FLUX Control, Canny), with tiny models on the CPU, through Registry.call."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.gpu.background import subject_edges
from tests.bricks.gpu.tiny_flux_control import QUIET, control_run, tiny_flux, tiny_flux_control  # noqa: F401 - fixtures
from tests.conftest import photo

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET]


@pytest.fixture(scope="module")
def cat() -> tuple[np.ndarray, np.ndarray]:
    """A 75x113 photo (no side a multiple of 16) and a background mask around a central subject."""
    image = photo("chelsea")[::4, ::4][:75]
    background = np.full(image.shape[:2], 255, np.uint8)
    background[15:60, 30:90] = 0
    return image, background


def test_the_gpu_backend_is_chosen_before_the_cpu_one(control_run):
    registry = control_run.registry
    assert registry.backend_for(registry.get("change_background")) == ("gpu", "")


def test_new_background_around_the_exact_subject_at_the_input_size(control_run, cat):
    image, background = cat
    out = control_run("change_background", image=image, mask=background, prompt="a beach at sunset")["image"]
    assert out.shape == image.shape and out.dtype == np.uint8
    subject = background == 0
    assert (out[subject] == image[subject]).all()
    assert (out[~subject] != image[~subject]).any()


def test_an_rgba_subject_keeps_its_alpha(control_run, cat):
    image, background = cat
    rgba = np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
    out = control_run("change_background", image=rgba, mask=background, prompt="a forest")["image"]
    assert out.shape == rgba.shape and (out[background == 0] == rgba[background == 0]).all()
    assert (out[..., 3] == 200).all()


def test_each_step_is_reported_and_a_cancel_stops_at_the_next(control_run, cat):
    image, background = cat
    registry = control_run.registry
    args = {"image": control_run.put(image), "mask": control_run.put(background), "prompt": "a city street"}
    seen: list[float] = []

    async def main() -> None:
        async def report(done, total, message):
            seen.append(done)

        await registry.call("change_background", args, on_progress=report)
        assert seen == [1, 2]
        seen.clear()
        with anyio.CancelScope() as scope:

            async def cancel_at_first(done, total, message):
                seen.append(done)
                scope.cancel()

            await registry.call("change_background", args, on_progress=cancel_at_first)
        assert scope.cancelled_caught and seen == [1]

    anyio.run(main)


@pytest.mark.parametrize("fill", [0, 255])
def test_a_mask_without_both_subject_and_background_is_refused(control_run, cat, fill):
    image, _ = cat
    with pytest.raises(InvalidInput) as err:
        control_run("change_background", image=image, mask=np.full(image.shape[:2], fill, np.uint8), prompt="a beach")
    assert err.value.param == "mask"


def test_control_edges_come_from_the_subject_only():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # edges everywhere
    subject = np.zeros((64, 64), bool)
    subject[16:48, 16:48] = True
    edges = subject_edges(image, subject)
    assert edges.shape == (64, 64, 3) and set(np.unique(edges)) <= {0, 255}
    near = np.zeros((64, 64), bool)
    near[14:50, 14:50] = True
    assert edges[subject].any() and not edges[~near].any()
    assert edges[16, 16:48].all()  # the outline is always drawn
