import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.inpaint import refine_strength
from tests.conftest import photo


def _disk(shape, centre, radius):
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, centre, radius, 255, -1)
    return mask


def test_removes_a_pasted_object_and_keeps_the_rest(run):
    clean = photo("coffee")[::2, ::2].copy()  # 200 x 300, wooden table around the cup
    mask = _disk(clean.shape[:2], (40, 160), 12)  # on the table, bottom left
    dirty = clean.copy()
    dirty[mask > 0] = (30, 200, 255)  # a bright blue blot that is not in the photo

    out = run("FASTINPAINT", image=dirty, mask=mask)
    filled = out["image"]

    grown = _disk(clean.shape[:2], (40, 160), 12 + 8)  # dilation is 25 px at 1024 -> 7 px here, margin 1
    assert np.array_equal(filled[grown == 0], dirty[grown == 0])
    region = mask > 0
    before = np.abs(dirty[region].astype(int) - clean[region]).mean()
    after = np.abs(filled[region].astype(int) - clean[region]).mean()
    assert after < before / 3  # the blot is gone, replaced by table-like colours
    assert out["score"] == 0.7  # small fill matching its surroundings in brightness


def test_a_fill_darker_than_the_photo_asks_for_a_stronger_repaint(run):
    image = photo("coffee")[::2, ::2].copy()  # the top-left corner is near black, the rest much brighter
    out = run("FASTINPAINT", image=image, mask=_disk(image.shape[:2], (15, 15), 10))
    assert out["score"] == 0.9


def test_a_mask_over_40_percent_asks_for_a_full_repaint(run):
    image = photo("astronaut")[::4, ::4].copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[:, : image.shape[1] // 2] = 255
    out = run("fast_inpaint", image=image, mask=mask)
    assert out["score"] == 1.0
    right = image.shape[1] // 2 + 10
    assert np.array_equal(out["image"][:, right:], image[:, right:])


@pytest.mark.parametrize(("gap", "strength"), [(0, 0.7), (30, 0.7), (31, 0.8), (70, 0.8), (71, 0.9), (200, 0.9)])
def test_strength_follows_the_brightness_gap(gap, strength):
    filled = np.full((100, 100, 3), 50, np.uint8)
    region = np.zeros((100, 100), bool)
    region[:20, :20] = True  # 4 % of the image
    filled[region] = 50 + gap
    assert refine_strength(filled, region) == strength


def test_strength_is_one_past_40_percent_whatever_the_gap():
    filled = np.zeros((10, 10, 3), np.uint8)
    region = np.zeros((10, 10), bool)
    region[:, :4] = True
    assert refine_strength(filled, region) == 0.7  # exactly 40 % is not over
    region[0, 4] = True
    assert refine_strength(filled, region) == 1.0


def test_transparency_outside_the_mask_is_kept(run):
    image = np.dstack([photo("chelsea")[::3, ::3], np.full((100, 151), 200, np.uint8)])
    image[:, :20, 3] = 0
    mask = _disk(image.shape[:2], (75, 50), 6)
    out = run("FASTINPAINT", image=image, mask=mask)["image"]
    assert out.shape == image.shape
    assert np.array_equal(out[:, :20], image[:, :20])


def test_empty_mask_is_refused(run):
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("FASTINPAINT", image=photo("coffee")[::4, ::4].copy(), mask=np.zeros((100, 150), np.uint8))


def test_mask_over_everything_is_refused(run):
    mask = np.full((100, 150), 255, np.uint8)
    mask[50, 75] = 0
    with pytest.raises(InvalidInput, match="`mask`.*whole image"):
        run("FASTINPAINT", image=photo("coffee")[::4, ::4].copy(), mask=mask)
