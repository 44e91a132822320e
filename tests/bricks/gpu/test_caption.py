"""CMI-PRED on the tiny Builder: a caption from the model, and the CPU backend's canvas and mask."""

from __future__ import annotations

import numpy as np
import pytest

from bricks import InvalidInput
from tests.bricks.gpu.tiny_vision import gpu, gpu_registry, tiny_models  # noqa: F401 - fixtures
from tests.conftest import photo


def test_caption_only(gpu, gpu_registry):
    assert gpu_registry.backend_for(gpu_registry.get("caption_and_canvas")) == ("gpu", "")
    out = gpu("caption_and_canvas", image=photo("chelsea")[::4, ::4])
    assert set(out) == {"caption"} and isinstance(out["caption"], str) and "\n" not in out["caption"]


def test_caption_with_the_outpainting_canvas(gpu):
    image = photo("chelsea")[::4, ::4]  # 75x113
    out = gpu("caption_and_canvas", image=image, left_ratio=1.5, right_ratio=1.0, top_ratio=1.0, bottom_ratio=1.2)
    h, w = image.shape[:2]
    assert out["image"].shape == (h + 15, w + 56, 3) and (out["image"][:h, 56:] == image).all()
    assert out["mask"].shape == out["image"].shape[:2] and set(np.unique(out["mask"])) == {0, 255}
    assert not out["mask"][:h, 56:].any() and out["mask"][:, :56].all()
    assert isinstance(out["caption"], str)


def test_partial_ratios_are_refused_before_the_model_runs(gpu):
    with pytest.raises(InvalidInput) as err:
        gpu("caption_and_canvas", image=photo("chelsea")[::4, ::4], left_ratio=1.5)
    assert err.value.param == "right_ratio"
