import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.style import CARTOON_COLOURS, find_style
from tests.conftest import photo


def _astronaut():
    return photo("astronaut")[::2, ::2].copy()  # 256 x 256


def _texture(image):
    """Typical fine detail: the median Laplacian magnitude (outlines barely move it)."""
    return np.median(np.abs(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F)))


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


def test_watercolour_washes_out_texture(run):
    image = _astronaut()
    out = run("FLUX-STYLE", image=image, prompt="an astronaut", style="watercolour")["image"]
    assert _texture(out) < _texture(image) * 0.6
    assert np.abs(out.astype(int) - image).mean() < 40  # still the same picture


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
