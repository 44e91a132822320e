import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from tests.conftest import photo


def _scene():
    """Astronaut (256 x 256) and a background mask: everything but an ellipse around her."""
    image = photo("astronaut")[::2, ::2].copy()
    subject = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(subject, (128, 150), (70, 110), 0, 0, 360, 255, -1)
    return image, 255 - subject


def _far_background(mask, margin=6):
    return cv2.erode(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0


def test_named_colour_fills_the_background_and_keeps_the_subject(run):
    image, background = _scene()
    out = run("FLUX-CBG", image=image, mask=background, prompt="a plain sky blue backdrop")["image"]
    subject = background == 0
    assert np.array_equal(out[subject], image[subject])
    assert (out[_far_background(background)] == (135, 206, 235)).all()
    edge = (background > 0) & ~_far_background(background, margin=1)  # background pixels touching the subject
    blend = out[edge].astype(int)
    assert (blend != (135, 206, 235)).any(axis=1).mean() > 0.5  # softened into the old pixels


def test_blur_softens_the_background_only(run):
    image, background = _scene()
    out = run("change_background", image=image, mask=background, prompt="blur the background, bokeh")["image"]
    subject = background == 0
    assert np.array_equal(out[subject], image[subject])
    far = _far_background(background)

    def detail(im):
        return np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_64F))[far].mean()

    assert detail(out) < detail(image) / 3


def test_blur_does_not_bleed_the_subject_into_the_background(run):
    image, background = _scene()
    image[background == 0] = (255, 0, 0)  # a pure red subject
    out = run("FLUX-CBG", image=image, mask=background, prompt="out-of-focus")["image"]
    ring = (background > 0) & ~_far_background(background, margin=4)
    reddish = lambda im: (im[ring, 0].astype(int) - im[ring, 1]).mean()  # noqa: E731
    assert reddish(out) < reddish(image) + 20


def test_blur_wins_over_a_colour(run):
    image, background = _scene()
    out = run("FLUX-CBG", image=image, mask=background, prompt="a blurry red wall")["image"]
    assert not (out[_far_background(background)] == (255, 0, 0)).all(axis=1).any()


def test_prompt_naming_neither_colour_nor_blur_is_refused(run):
    image, background = _scene()
    with pytest.raises(InvalidInput, match="`prompt`.*neither a colour.*nor a blur.*GPU"):
        run("FLUX-CBG", image=image, mask=background, prompt="a beach at sunset")


@pytest.mark.parametrize(("fill", "reason"), [(0, "empty"), (255, "whole image")])
def test_mask_must_split_subject_and_background(run, fill, reason):
    image, _ = _scene()
    with pytest.raises(InvalidInput, match=f"`mask`.*{reason}"):
        run("FLUX-CBG", image=image, mask=np.full(image.shape[:2], fill, np.uint8), prompt="white")
