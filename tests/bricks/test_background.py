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


def _inner_subject(background, margin=8):
    """The subject away from its outline, where the soft edge never reaches."""
    return _far_background(255 - background, margin)


def test_named_colour_fills_the_background_and_keeps_the_subject(run):
    image, background = _scene()
    out = run("FLUX-CBG", image=image, mask=background, prompt="a plain sky blue backdrop")["image"]
    inner = _inner_subject(background)
    assert np.array_equal(out[inner], image[inner])
    assert (out[_far_background(background)] == (135, 206, 235)).all()
    edge = (background > 0) & ~_far_background(background, margin=1)  # background pixels touching the subject
    blend = out[edge].astype(int)
    assert (blend != (135, 206, 235)).any(axis=1).mean() > 0.5  # softened into the old pixels


def test_the_new_background_meets_a_real_subject_through_a_soft_edge(run):
    image = photo("chelsea")
    subject = run("SOS", image=image)["mask"]
    out = run("FLUX-CBG", image=image, mask=255 - subject, prompt="pure black")["image"].astype(float)
    # how much of the old pixel is left: 1 on the cat, 0 on the new black background
    kept = out.sum(axis=2) / np.maximum(image.astype(float).sum(axis=2), 1)
    edge = cv2.morphologyEx(subject, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    assert ((kept[edge] > 0.1) & (kept[edge] < 0.9)).mean() > 0.3  # blended along the outline, not cut
    steps = np.abs(np.diff(out.sum(axis=2), axis=1))[edge[:, 1:]]
    hard = np.abs(np.diff(np.where(subject > 0, image.sum(axis=2), 0.0), axis=1))[edge[:, 1:]]
    assert np.percentile(steps, 90) < 0.6 * np.percentile(hard, 90)  # no jagged rim: smaller jumps than a hard cut


def test_blur_softens_the_background_only(run):
    image, background = _scene()
    out = run("change_background", image=image, mask=background, prompt="blur the background, bokeh")["image"]
    inner = _inner_subject(background)
    assert np.array_equal(out[inner], image[inner])
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
