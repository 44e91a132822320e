import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from tests.conftest import photo


def _cup():
    """Coffee photo (200 x 300) and a mask of its red saucer and cup, found by colour."""
    image = photo("coffee")[::2, ::2].copy()
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    red = ((hsv[..., 0] < 8) | (hsv[..., 0] > 170)) & (hsv[..., 1] > 150) & (hsv[..., 2] > 90)
    return image, np.where(red, 255, 0).astype(np.uint8)


def _hue_degrees(pixels):
    return cv2.cvtColor(pixels[None], cv2.COLOR_RGB2HSV_FULL)[0, :, 0].astype(float) * 360 / 256


@pytest.mark.parametrize(("prompt", "hue"), [("make it blue", 240), ("a green saucer", 120), ("turn it Gold", 51)])
def test_masked_object_takes_the_named_hue(run, prompt, hue):
    image, mask = _cup()
    inside = mask > 0
    assert 0.05 < inside.mean() < 0.5
    out = run("FLUX-RCM", image=image, mask=mask, prompt=prompt)["image"]
    assert np.array_equal(out[~inside], image[~inside])
    hues = _hue_degrees(out[inside])
    assert np.median(np.abs(hues - hue)) < 5
    # shading and texture survive: the new lightness follows the old one pixel by pixel
    before = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[inside].astype(float)
    after = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[inside].astype(float)
    assert np.corrcoef(before, after)[0, 1] > 0.8


def test_white_keeps_shading_without_colour(run):
    image, mask = _cup()
    out = run("recolor_material", image=image, mask=mask, prompt="paint it white")["image"]
    inside = out[mask > 0].astype(int)
    assert np.abs(inside - inside.mean(axis=1, keepdims=True)).max() <= 1  # grey
    assert inside.mean() > 200
    assert inside.std() > 5  # not a flat fill


def test_alpha_is_kept(run):
    image, mask = _cup()
    rgba = np.dstack([image, np.full(mask.shape, 180, np.uint8)])
    out = run("FLUX-RCM", image=rgba, mask=mask, prompt="red")["image"]
    assert out.shape == rgba.shape
    assert (out[..., 3] == 180).all()


def test_prompt_without_a_colour_is_refused(run):
    image, mask = _cup()
    with pytest.raises(InvalidInput, match="`prompt`.*names no colour.*only recolours.*GPU"):
        run("FLUX-RCM", image=image, mask=mask, prompt="make it wooden")


def test_empty_mask_is_refused(run):
    image, mask = _cup()
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("FLUX-RCM", image=image, mask=np.zeros_like(mask), prompt="blue")
