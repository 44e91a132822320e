import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.style import CARTOON_COLOURS, find_style
from tests.conftest import photo


def _astronaut():
    return photo("astronaut")[::2, ::2].copy()  # 256 x 256


def _luminance(image):
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _colour_detail(image):
    """How much the colour changes within a few pixels: the median local deviation of Lab a*, b* (7 x 7)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    deviations = []
    for channel in (lab[..., 1], lab[..., 2]):
        mean, mean_square = cv2.blur(channel, (7, 7)), cv2.blur(channel * channel, (7, 7))
        deviations.append(np.median(np.sqrt(np.maximum(mean_square - mean * mean, 0))))
    return float(np.mean(deviations))


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("grey", "grey"),
        ("Black-and-white photo", "grey"),
        ("B&W", "grey"),
        ("vintage style", "sepia"),
        ("Pencil sketch style", "sketch"),
        ("a comic book", "cartoon"),
        ("WATERCOLOR painting", "watercolour"),
        ("a black and white cartoon", "grey"),  # the style named first wins
        ("anime", None),
        ("greyhound", None),
    ],
)
def test_find_style(text, style):
    assert find_style(text) == style


def test_grey_has_no_colour(run):
    out = run("FLUX-STYLE", image=_astronaut(), prompt="an astronaut", style="greyscale")["image"]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_sepia_is_warm_brown(run):
    out = run("FLUX-STYLE", image=_astronaut(), prompt="an astronaut", style="sepia")["image"].astype(int)
    r, g, b = out[..., 0], out[..., 1], out[..., 2]
    assert (r >= g).all() and (g >= b).all()
    assert (r - b).mean() > 20


def test_sketch_is_dark_strokes_on_white(run):
    image = _astronaut()
    out = run("FLUX-STYLE", image=image, prompt="an astronaut", style="pencil drawing")["image"]
    assert (out[..., 0] == out[..., 2]).all()
    assert np.median(out) > 200  # mostly paper
    assert (out < 100).mean() > 0.005  # with some dark strokes


def test_cartoon_flattens_colours_and_draws_outlines(run):
    image = _astronaut()
    out = run("FLUX-STYLE", image=image, prompt="an astronaut", style="cartoon")["image"]
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= CARTOON_COLOURS + 1  # the flat colours and black
    assert (out.sum(axis=2) == 0).mean() > 0.02  # black outlines


def _paint(run, image, **inputs):
    return run("FLUX-STYLE", image=image, prompt="a picture", style="watercolour", **inputs)["image"]


def test_watercolour_draws_no_black_outlines(run):
    # cv2.stylization, the filter this replaced, darkens about 6,400 such pixels here; the washes none
    image = _astronaut()
    out = _paint(run, image)
    dark_nearby = cv2.erode(_luminance(image), np.ones((7, 7), np.uint8)) < 40  # dark within 3 px in the photo
    assert ((_luminance(out) < 40) & ~dark_nearby).mean() < 0.001


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_watercolour_washes_colour_smoothly_without_posterising(run, name):
    # figures on these three photos, watercolour / cv2.stylization (the filter this replaced):
    # colour detail 0.56-0.65 / 0.47-0.98 of the photo's, flat neighbours 2-6% / 9-33% (photos 2-11%)
    image = photo(name)[::2, ::2].copy()
    out = _paint(run, image)
    assert _colour_detail(out) < _colour_detail(image) * 0.7  # colour washed smooth locally
    flat_neighbours = (np.abs(np.diff(out.astype(int), axis=1)).max(axis=2) == 0).mean()
    assert flat_neighbours < 0.08  # yet no flat posterised plateaus (cartoon: over 80%)
    assert len(np.unique(out.reshape(-1, 3), axis=0)) > 10_000
    blurred = [cv2.GaussianBlur(_luminance(x).astype(np.float32), (0, 0), 4).ravel() for x in (image, out)]
    assert np.corrcoef(*blurred)[0, 1] > 0.75  # still the same picture (0.83-0.98)


def test_watercolour_is_pale_pigment_on_white_paper(run):
    image = _astronaut()
    out = _paint(run, image)
    saturation = [np.median(cv2.cvtColor(x, cv2.COLOR_RGB2HSV)[..., 1]) for x in (image, out)]
    assert saturation[1] < saturation[0] * 0.6
    assert _luminance(out).mean() > _luminance(image).mean() + 30
    assert (_luminance(out) > 235).mean() > 0.1  # the pale backdrop becomes paper (1.9% of the photo)
    assert _luminance(out).min() > 25  # even the black helmet is pigment, not ink


def test_watercolour_is_deterministic(run):
    image = _astronaut()
    np.random.seed(1)
    first = _paint(run, image)
    np.random.seed(2)
    assert np.array_equal(first, _paint(run, image))


def test_watercolour_with_a_mask_changes_only_the_masked_part(run):
    image = _astronaut()
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[64:192, 64:192] = 255
    out = _paint(run, image, mask=mask)
    outside = mask == 0
    assert np.array_equal(out[outside], image[outside])
    assert np.abs(out[~outside].astype(int) - image[~outside]).mean() > 10


def test_with_a_mask_only_the_masked_part_changes(run):
    image = _astronaut()
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[:, :128] = 255
    out = run("FLUX-STYLE", image=image, mask=mask, prompt="an astronaut", style="sketch")["image"]
    assert np.array_equal(out[:, 128:], image[:, 128:])
    assert (out[:, :128, 0] == out[:, :128, 1]).all()
    assert not np.array_equal(out[:, :128], image[:, :128])


def test_unknown_style_lists_the_known_ones(run):
    with pytest.raises(InvalidInput, match="`style`.*grey, sepia, sketch, cartoon, watercolour.*'Van Gogh'.*GPU"):
        run("stylize", image=_astronaut(), prompt="an astronaut", style="Van Gogh")


def test_empty_mask_is_refused(run):
    image = _astronaut()
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("stylize", image=image, mask=np.zeros(image.shape[:2], np.uint8), prompt="x", style="sepia")
