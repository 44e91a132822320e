"""The FLUX Fill bricks end to end on a tiny random FLUX Fill, through `Registry.call` on the CPU."""

import numpy as np
import pytest

from bricks import InvalidInput
from tests.bricks.gpu.tiny_flux import QUIET, flux_run, tiny_flux  # noqa: F401 (fixtures)
from tests.conftest import photo
from tests.ray_cluster import model_loads

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET]

H, W = 70, 100  # not multiples of 16: the bricks must bring results back to this size


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(photo("chelsea")).resize((W, H)))


def box(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[top:bottom, left:right] = 255
    return mask


def outside_unchanged(out: np.ndarray, image: np.ndarray, mask: np.ndarray) -> bool:
    return np.array_equal(out[mask == 0], image[mask == 0])


def test_generative_fill_changes_only_the_mask(flux_run, scene):
    mask = box(10, 20, 50, 60)
    out = flux_run("generative_fill", image=scene, mask=mask, prompt="a red ball")["image"]
    assert out.shape == scene.shape and out.dtype == np.uint8
    assert outside_unchanged(out, scene, mask)
    assert not np.array_equal(out[mask > 0], scene[mask > 0])


def test_generative_fill_outpaints_the_canvas_of_caption_and_canvas(flux_run, scene):
    canvas = flux_run("caption_and_canvas", image=scene, left_ratio=1.2, right_ratio=1.2, top_ratio=1.0, bottom_ratio=1.0)
    out = flux_run("generative_fill", image=canvas["image"], mask=canvas["mask"], prompt=canvas["caption"] or "a cat", preimage=scene)
    assert out["image"].shape == canvas["image"].shape
    assert outside_unchanged(out["image"], canvas["image"], canvas["mask"])


def test_generative_fill_inserts_a_reference_object(flux_run, scene):
    reference = np.zeros((40, 30, 4), np.uint8)  # an RGBA cut-out of another size
    reference[5:35, 5:25] = (200, 40, 40, 255)
    mask = box(20, 30, 60, 70)
    out = flux_run("generative_fill", image=scene, mask=mask, prompt="a red box", preimage=reference)["image"]
    assert out.shape == scene.shape
    assert outside_unchanged(out, scene, mask)


def test_refine_removal_repaints_only_the_grown_mask(flux_run, scene):
    from bricks.cpu.inpaint import DILATE
    from bricks.gpu.diffusion import grow

    mask = box(20, 30, 45, 55)
    quick = flux_run("fast_inpaint", image=scene, mask=mask)
    out = flux_run("refine_removal", image=scene, mask=mask, preimage=quick["image"], score=quick["score"])["image"]
    assert out.shape == scene.shape
    assert outside_unchanged(out, scene, grow(mask, DILATE))


@pytest.mark.parametrize("tool", ["change_environment", "change_pose"])
def test_diptych_bricks_return_the_input_size(flux_run, scene, tool):
    out = flux_run(tool, image=scene, prompt="make it snowy")["image"]
    assert out.shape == scene.shape and out.dtype == np.uint8


def test_recolor_material_on_the_gpu_backend_keeps_the_outside_exactly(flux_run, scene):
    mask = box(15, 25, 55, 65)
    out = flux_run("recolor_material", image=scene, mask=mask, prompt="made of wood")["image"]  # the CPU backend refuses materials
    assert out.shape == scene.shape
    assert outside_unchanged(out, scene, mask)


def test_stylize_any_style_masked_or_whole(flux_run, scene):
    mask = box(0, 0, 35, 50)
    part = flux_run("stylize", image=scene, mask=mask, prompt="a cat on a sofa", style="Van Gogh")["image"]  # no CPU filter
    assert part.shape == scene.shape and outside_unchanged(part, scene, mask)
    rgba = np.dstack([scene, np.full((H, W), 200, np.uint8)])
    whole = flux_run("stylize", image=rgba, prompt="a cat", style="anime style")["image"]
    assert whole.shape == rgba.shape and np.all(whole[..., 3] == 200)


def test_adapters_switch_without_reloading_the_base(flux_run, scene):
    mask = box(10, 10, 40, 40)
    flux_run("recolor_material", image=scene, mask=mask, prompt="make it blue")
    flux_run("change_environment", image=scene, prompt="make it night")
    flux_run("stylize", image=scene, prompt="a cat", style="sketch")
    flux_run("recolor_material", image=scene, mask=mask, prompt="made of glass")
    flux_run("generative_fill", image=scene, mask=mask, prompt="a hat")  # no adapter
    loads = model_loads(flux_run.registry, "flux_fill")
    assert loads["flux_fill"] == 1
    assert loads["lora_rcm"] == loads["lora_env"] == loads["lora_style"] == 1


def test_empty_or_mismatched_masks_are_the_callers_to_fix(flux_run, scene):
    with pytest.raises(InvalidInput, match="mask is empty"):
        flux_run("generative_fill", image=scene, mask=np.zeros((H, W), np.uint8), prompt="a hat")
    with pytest.raises(InvalidInput, match="must match"):
        flux_run("generative_fill", image=scene, mask=np.full((H + 2, W), 255, np.uint8), prompt="a hat")
