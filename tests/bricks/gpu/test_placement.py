"""ADD-PRED on the tiny Qwen2.5-VL Builder: a grammar-held box, clamped to the image and the mask's box."""

from __future__ import annotations

import numpy as np
import pytest

from bricks import InvalidInput
from bricks.gpu import placement
from tests.bricks.gpu.tiny_vision import gpu, gpu_here, gpu_registry, tiny_models  # noqa: F401 - fixtures
from tests.conftest import photo


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    assert (mask[top:bottom, left:right] == 255).all(), "the mask is a filled rectangle"
    return left, top, right, bottom


def test_add_pred_gives_a_box_mask_inside_the_image(gpu, gpu_registry):
    assert gpu_registry.backend_for(gpu_registry.get("predict_placement")) == ("gpu", "")
    image = photo("coffee")[::5, ::5]  # 80x120
    out = gpu("predict_placement", image=image, prompt="add a small cat on the left")
    assert out["mask"].shape == image.shape[:2] and set(np.unique(out["mask"])) <= {0, 255}
    left, top, right, bottom = _box(out["mask"])
    assert 0 <= left < right <= 120 and 0 <= top < bottom <= 80


def test_add_pred_stays_in_the_given_mask_box(gpu):
    image = photo("coffee")[::5, ::5]
    region = np.zeros(image.shape[:2], np.uint8)
    region[10:40, 60:100] = 255
    left, top, right, bottom = _box(gpu("predict_placement", image=image, prompt="a red boat", mask=region)["mask"])
    assert 60 <= left < right <= 100 and 10 <= top < bottom <= 40


def test_the_answer_follows_the_box_grammar(gpu_here):
    from bricks.gpu.mllm import ask

    text, seen = ask(gpu_here.registry.models, photo("coffee")[::5, ::5], "Where?", max_new_tokens=placement.BOX_TOKENS, grammar=placement.BOX_GRAMMAR, what="t")
    numbers = text.strip("[]").split(", ")
    assert text.startswith("[") and text.endswith("]") and len(numbers) == 4 and all(n.isdigit() for n in numbers)
    assert seen[0] % 14 == 0 and seen[1] % 14 == 0


@pytest.mark.parametrize(("box", "region", "expected"), [
    ((90.0, 5.0, 10.0, 50.0), (0, 0, 120, 80), (10, 5, 90, 50)),  # reversed corners are ordered
    ((-20.0, -5.0, 500.0, 70.0), (60, 10, 100, 40), (60, 10, 100, 40)),  # clamped to the region
    ((30.0, 30.0, 30.0, 30.0), (0, 0, 120, 80), (27, 28, 33, 32)),  # a point is widened to 5 % of each side
])  # fmt: skip
def test_fit(box, region, expected):
    assert placement._fit(box, region) == expected


def test_add_pred_refuses_an_empty_mask(gpu):
    image = photo("coffee")[::5, ::5]
    with pytest.raises(InvalidInput) as err:
        gpu("predict_placement", image=image, prompt="a cat", mask=np.zeros(image.shape[:2], np.uint8))
    assert err.value.param == "mask"
