import time

import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.tone import adjust
from tests.conftest import photo

NEUTRAL = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "gamma": 1.0, "warmth": 0.0, "sharpness": 0.0}


def _chelsea() -> np.ndarray:
    return photo("chelsea")[:128, :128]


def _rgba() -> np.ndarray:
    alpha = np.zeros((128, 128), np.uint8)
    cv2.circle(alpha, (64, 64), 40, 200, -1)
    return np.dstack([_chelsea(), alpha])


def test_brightness_half_is_identity(run):
    image = _chelsea()
    assert np.array_equal(run("BRIGHT", image=image, ratio=0.5)["image"], image)


def test_brightness_scales_by_twice_the_ratio(run):
    image = _chelsea()
    assert not run("BRIGHT", image=image, ratio=0.0)["image"].any()
    darker = run("brightness", image=image, ratio=0.25)["image"]
    assert np.abs(darker.astype(int) - image // 2).max() <= 1
    brighter = run("brightness", image=image, ratio=0.75)["image"]
    assert brighter.mean() > image.mean() * 1.3
    assert np.all(brighter >= image)


def test_brightness_keeps_alpha(run):
    image = _rgba()
    out = run("BRIGHT", image=image, ratio=0.3)["image"]
    assert np.array_equal(out[..., 3], image[..., 3])
    assert out[..., :3].mean() < image[..., :3].mean()


def test_brightness_ratio_is_bounded(run):
    with pytest.raises(InvalidInput, match="`ratio`"):
        run("BRIGHT", image=_chelsea(), ratio=1.5)


@pytest.mark.parametrize("make", [_chelsea, _rgba])
def test_adjust_neutral_defaults_return_identical_pixels(run, make):
    image = make()
    assert np.array_equal(run("ADJUST", image=image)["image"], image)
    assert np.array_equal(run("adjust", image=image, mask=np.full((128, 128), 255, np.uint8), **NEUTRAL)["image"], image)


@pytest.mark.parametrize(
    ("setting", "check"),
    [
        ({"brightness": 0.2}, lambda a, b: b.mean() > a.mean() + 30),
        ({"brightness": -0.2}, lambda a, b: b.mean() < a.mean() - 30),
        ({"contrast": 0.5}, lambda a, b: b.std() > a.std() * 1.3),
        ({"contrast": -1.0}, lambda a, b: np.all(b == 128)),
        ({"saturation": -1.0}, lambda a, b: np.abs(np.diff(b.astype(int), axis=2)).max() <= 1),
        ({"saturation": 0.8}, lambda a, b: np.ptp(b.astype(int), axis=2).mean() > 1.5 * np.ptp(a.astype(int), axis=2).mean()),
        ({"warmth": 0.5}, lambda a, b: b[..., 0].mean() > a[..., 0].mean() + 5 and b[..., 2].mean() < a[..., 2].mean() - 5),
        ({"warmth": -0.5}, lambda a, b: b[..., 0].mean() < a[..., 0].mean() - 5 and b[..., 2].mean() > a[..., 2].mean() + 5),
        ({"gamma": 2.0}, lambda a, b: b.mean() > a.mean() + 20),
        ({"gamma": 0.5}, lambda a, b: b.mean() < a.mean() - 20),
    ],
)
def test_adjust_each_setting_does_what_it_says(run, setting, check):
    image = _chelsea()
    out = run("ADJUST", image=image, **setting)["image"]
    assert out.shape == image.shape
    assert check(image.astype(float), out)


def test_gamma_keeps_black_and_white(run):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, 32:] = 255
    assert np.array_equal(run("ADJUST", image=image, gamma=3.0)["image"], image)


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_sharpness_raises_and_lowers_fine_detail(run):
    image = photo("astronaut")[:160, :160]
    sharper = run("ADJUST", image=image, sharpness=1.0)["image"]
    softer = run("ADJUST", image=image, sharpness=-1.0)["image"]
    assert _detail(sharper) > 1.5 * _detail(image) > 1.5 * 1.5 * _detail(softer)


def test_adjust_inside_a_mask_leaves_the_rest_untouched(run):
    image = _rgba()
    mask = np.zeros((128, 128), np.uint8)
    mask[:, :64] = 255
    out = run("ADJUST", image=image, mask=mask, brightness=0.3, saturation=0.5, sharpness=0.5)["image"]
    assert np.array_equal(out[:, 64:], image[:, 64:])
    assert out[:, :64, :3].mean() > image[:, :64, :3].mean() + 40
    assert np.array_equal(out[..., 3], image[..., 3])


def test_adjust_refuses_an_empty_mask(run):
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("ADJUST", image=_chelsea(), mask=np.zeros((128, 128), np.uint8), brightness=0.2)


def test_adjust_is_fast_on_a_megapixel_photo():
    image = cv2.resize(photo("astronaut"), (1024, 1024))
    settings = {"brightness": 0.1, "contrast": 0.2, "saturation": 0.3, "gamma": 1.4, "warmth": 0.2, "sharpness": 0.5}
    start = time.perf_counter()
    adjust(image=image, mask=None, **settings)
    assert time.perf_counter() - start < 1.0  # about 0.1 s here; generous for a busy machine


def test_a_masked_adjustment_fades_in_along_the_masks_inner_edge(run):
    image = photo("astronaut")
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, (225, 125), (55, 70), 0, 0, 360, 255, -1)  # her face
    out = run("ADJUST", image=image, mask=mask, brightness=0.2)["image"].astype(int)
    change = (out - image).mean(axis=2)
    assert np.array_equal(out[mask == 0], image[mask == 0])  # outside: exactly as it was
    inner = cv2.erode(mask, np.ones((25, 25), np.uint8)) > 0
    assert change[inner].mean() > 0.9 * 0.2 * 255  # well inside: the whole change
    rim = (mask > 0) & ~(cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0)
    assert change[rim].mean() < 0.5 * change[inner].mean()  # at the edge: faded, no seam
