"""FASTINPAINT on LaMa: a scripted tiny net with big-lama's call signature, loaded from its .pt file."""

from __future__ import annotations

import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.inpaint import grow_mask
from tests.bricks.gpu.tiny_vision import gpu, gpu_registry, tiny_models  # noqa: F401 - fixtures
from tests.conftest import photo


@pytest.mark.parametrize("size", [(90, 117), (64, 96)])  # sides that are and are not multiples of 8
def test_lama_fills_the_grown_mask_and_keeps_every_other_pixel(gpu, gpu_registry, size):
    assert gpu_registry.backend_for(gpu_registry.get("fast_inpaint")) == ("gpu", "")
    h, w = size
    image = photo("astronaut")[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    mask[30:50, 40:70] = 255
    out = gpu("fast_inpaint", image=image, mask=mask)
    grown = grow_mask(mask) > 0
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert (out["image"][~grown] == image[~grown]).all()
    assert (out["image"][grown] != image[grown]).any()
    assert out["score"] in (0.7, 0.8, 0.9, 1.0)


def test_lama_fills_the_alpha_channel_too(gpu):
    image = np.dstack([photo("astronaut")[:64, :64], np.full((64, 64), 200, np.uint8)])
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 20:30] = 255
    out = gpu("fast_inpaint", image=image, mask=mask)["image"]
    assert out.shape == (64, 64, 4) and (abs(out[..., 3].astype(int) - 200) <= 2).all()


def test_lama_refuses_an_empty_mask(gpu):
    with pytest.raises(InvalidInput) as err:
        gpu("fast_inpaint", image=photo("astronaut")[:64, :64], mask=np.zeros((64, 64), np.uint8))
    assert err.value.param == "mask"
