import numpy as np
import pytest

from bricks import InvalidInput
from tests.conftest import photo


def test_bbox_of_a_real_object_mask(run):
    grey = photo("coins")  # bright coins on a dark table
    mask = np.where(grey > 150, 255, 0).astype(np.uint8)
    out = run("BBOX", mask=mask)["mask"]
    ys, xs = np.nonzero(mask)
    box = out > 0
    assert box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()
    assert box.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert set(np.unique(out)) == {0, 255}


def test_bbox_of_empty_mask_names_the_parameter(run):
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("mask_to_box", mask=np.zeros((32, 32), np.uint8))


def _coin_mask() -> np.ndarray:
    return np.where(photo("coins")[:128, :128] > 150, 255, 0).astype(np.uint8)


def _half_mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[:, shape[1] // 2 :] = 255
    return mask


def _cutout() -> np.ndarray:
    """A 128x128 RGBA cut-out: the coins photo's bright coins, transparent elsewhere."""
    grey = photo("coins")[:128, :128]
    return np.dstack([grey, grey, grey, _coin_mask()])


def test_subtract_masks_keeps_mask1_outside_mask2(run):
    coins, half = _coin_mask(), _half_mask((128, 128))
    out = run("INVERSE", mask1=coins, mask2=half)
    assert set(out) == {"mask"}
    assert np.array_equal(out["mask"] > 0, (coins > 0) & (half == 0))
    assert out["mask"][:, :64].any() and not out["mask"][:, 64:].any()


def test_inverse_of_a_mask_without_mask1(run):
    coins = _coin_mask()
    out = run("invert_or_subtract", mask2=coins)["mask"]
    assert np.array_equal(out, 255 - coins)


def test_subtract_images_per_channel_floored_at_black(run):
    image1, image2 = photo("astronaut")[:96, :96], photo("coffee")[:96, :96]
    out = run("INVERSE", image1=image1, image2=image2)
    assert set(out) == {"image"}
    expected = np.clip(image1.astype(int) - image2.astype(int), 0, 255)
    assert np.array_equal(out["image"], expected)
    assert not run("INVERSE", image1=image1, image2=image1)["image"].any()


def test_transparent_pixels_of_image2_subtract_nothing(run):
    image1 = photo("chelsea")[:128, :128]
    out = run("INVERSE", image1=image1, image2=_cutout())["image"]
    outside = _coin_mask() == 0
    assert np.array_equal(out[outside], image1[outside])
    assert out[~outside].mean() < image1[~outside].mean() - 50


@pytest.mark.parametrize(
    ("args", "param"),
    [
        ({"mask2": "m", "image1": "i"}, "image1"),
        ({"image1": "i"}, "image2"),
        ({"image2": "i"}, "image1"),
        ({"mask1": "m"}, "mask2"),
        ({}, "mask2"),
    ],
)
def test_subtract_refuses_mixed_or_incomplete_inputs(run, args, param):
    values = {"m": _coin_mask(), "i": photo("chelsea")[:128, :128]}
    with pytest.raises(InvalidInput, match=f"`{param}`"):
        run("INVERSE", **{name: values[key] for name, key in args.items()})


def test_compose_masks_is_their_union(run):
    coins, half = _coin_mask(), _half_mask((128, 128))
    out = run("COMPOSE", mask1=coins, mask2=half)
    assert set(out) == {"mask"}
    assert np.array_equal(out["mask"] > 0, (coins > 0) | (half > 0))


def test_compose_lays_the_cutout_over_the_photo(run):
    background, cutout = photo("chelsea")[:128, :128], _cutout()
    out = run("compose", image1=background, image2=cutout)
    assert set(out) == {"image"}
    image, inside = out["image"], _coin_mask() > 0
    assert image.shape == (128, 128, 3)
    assert np.array_equal(image[inside], cutout[..., :3][inside])
    assert np.array_equal(image[~inside], background[~inside])


def test_compose_blends_partial_alpha_and_merges_transparency(run):
    background = np.dstack([photo("chelsea")[:64, :64], _half_mask((64, 64))])  # opaque right half
    top = np.dstack([photo("coffee")[:64, :64], np.full((64, 64), 128, np.uint8)])
    image = run("compose", image1=background, image2=top)["image"]
    assert image.shape == (64, 64, 4)
    assert np.all(image[:, :32, 3] == 128) and np.all(image[:, 32:, 3] == 255)
    assert np.array_equal(image[:, :32, :3], top[:, :32, :3])  # nothing beneath: the top colour
    mix = (top[:, 32:, :3].astype(float) * 128 + background[:, 32:, :3] * 127.0) / 255
    assert np.abs(image[:, 32:, :3] - mix).max() <= 1


def test_compose_refuses_an_opaque_top_image(run):
    with pytest.raises(InvalidInput, match="`image2`.*transparent"):
        run("COMPOSE", image1=photo("chelsea")[:64, :64], image2=photo("coffee")[:64, :64])


def test_compose_needs_both_masks(run):
    with pytest.raises(InvalidInput, match="`mask2`"):
        run("COMPOSE", mask1=_coin_mask())
