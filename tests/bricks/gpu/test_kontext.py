"""KONTEXT-EDIT on FLUX Kontext, with a tiny model on the CPU, through Registry.call."""

from __future__ import annotations

import numpy as np
import pytest

from bricks import InvalidInput
from tests.bricks.gpu.tiny_flux_control import QUIET, control_registry, control_run, tiny_flux, tiny_flux_control  # noqa: F401 - fixtures
from tests.conftest import Bricks, photo

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET]


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return photo("coffee")[::5, ::5]  # 80x120: Kontext would snap it to a preferred resolution unless told not to


def test_whole_image_edit_at_the_input_size(control_run, coffee):
    assert control_run.registry.backend_for(control_run.registry.get("KONTEXT-EDIT")) == ("gpu", "")
    out = control_run("kontext_edit", image=coffee, prompt="make the cup blue")["image"]
    assert out.shape == coffee.shape and out.dtype == np.uint8
    assert (out != coffee).any()


def test_pixels_outside_the_mask_are_kept_exactly(control_run):
    image = photo("coffee")[::4, ::4][:70, :110]  # 70x110
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[10:50, 20:70] = 255
    out = control_run("kontext_edit", image=image, prompt="put a spoon in the cup", mask=mask)["image"]
    assert out.shape == image.shape
    assert (out[mask == 0] == image[mask == 0]).all()
    assert (out[mask > 0] != image[mask > 0]).any()


def test_an_empty_mask_is_refused(control_run, coffee):
    with pytest.raises(InvalidInput) as err:
        control_run("kontext_edit", image=coffee, prompt="add a hat", mask=np.zeros(coffee.shape[:2], np.uint8))
    assert err.value.param == "mask"


@pytest.mark.parametrize("share", [True, False])
def test_flux_pipelines_share_one_copy_of_their_text_encoders(tiny_flux_control, tmp_path, coffee, share):
    registry = control_registry(tiny_flux_control, tmp_path, runtime=f"share_text_encoders = {str(share).lower()}")
    run = Bricks(registry)
    mask = np.full(coffee.shape[:2], 255, np.uint8)
    mask[20:60, 30:90] = 0  # the cup stays
    run("change_background", image=coffee, mask=mask, prompt="a beach")
    run("kontext_edit", image=coffee, prompt="make the cup blue")
    canny, kontext = (registry.models.load(key, None) for key in ("flux_canny", "flux_kontext"))  # cached: no loader needed
    assert (kontext.text_encoder_2 is canny.text_encoder_2) is share
    assert (kontext.tokenizer is canny.tokenizer) is share
    assert kontext.transformer is not canny.transformer


def test_evicting_one_pipeline_leaves_the_shared_encoders_to_the_other(tiny_flux_control, tmp_path):
    from bricks.gpu.diffusion import pipeline_loader

    mgr = control_registry(tiny_flux_control, tmp_path, runtime="offload = true").models
    canny = mgr.load("flux_canny", pipeline_loader("FluxControlPipeline", mgr))
    kontext = mgr.load("flux_kontext", pipeline_loader("FluxKontextPipeline", mgr))

    def size(*modules) -> int:
        return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))

    encoders = size(kontext.text_encoder, kontext.text_encoder_2)
    whole = size(*(m for m in kontext.components.values() if hasattr(m, "parameters")))
    assert mgr.usage() == {"flux_canny": size(*(m for m in canny.components.values() if hasattr(m, "parameters"))),
                           "flux_kontext": whole - encoders}  # fmt: skip
    moved = []
    for module in (canny.transformer, canny.text_encoder_2):
        module.to = lambda *a, module=module, **k: moved.append(module) or module  # record the offload
    mgr.evict("flux_canny")
    assert moved == [canny.transformer]  # the shared T5 stays where Kontext uses it
    assert mgr.usage() == {"flux_kontext": whole}
