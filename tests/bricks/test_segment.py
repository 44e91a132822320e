import anyio
import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.segment import ITERATIONS
from tests.conftest import photo


def _cat():
    return photo("chelsea")[::2, ::2].copy()  # 150 x 226, the cat's face fills the middle


def test_salient_object_is_the_cat(run):
    image = _cat()
    out = run("SOS", image=image)
    mask = out["mask"] > 0
    h, w = mask.shape
    assert 0.1 < mask.mean() < 0.7  # an object, not the whole picture
    assert mask[int(h * 0.4) : int(h * 0.6), int(w * 0.4) : int(w * 0.6)].mean() > 0.8  # the cat's nose and muzzle
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert not border.any()
    preview = out["image"]
    assert preview.shape == (h, w, 4)
    assert np.array_equal(preview[..., :3], image)
    assert np.array_equal(preview[..., 3], out["mask"])


def test_salient_object_of_a_tiny_image_is_refused(run):
    with pytest.raises(InvalidInput, match="`image`.*too small"):
        run("segment_salient", image=_cat()[:10, :10])


def _coffee():
    return photo("coffee")[::2, ::2].copy()  # 200 x 300; the cup's white rim is at the top centre


def _ellipse(shape, centre, axes):
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask


def _box_of(mask):
    ys, xs = np.nonzero(mask)
    box = np.zeros(mask.shape, bool)
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return box


COFFEE = (slice(30, 60), slice(110, 150))  # the coffee inside the cup


def test_a_loose_box_shrinks_to_the_cup(run):
    image = _coffee()
    rough = np.zeros(image.shape[:2], np.uint8)
    rough[5:100, 75:185] = 255
    out = run("MASK-SEG", image=image, mask=rough)
    mask = out["mask"] > 0
    assert not mask[rough == 0].any()  # never outside the box
    assert 0.5 < mask.sum() / (rough > 0).sum() < 0.9
    assert mask[COFFEE].mean() > 0.95
    assert not mask[90:100, 75:90].any()  # the dark table in the box's corner
    assert np.array_equal(out["image"][..., 3], out["mask"])
    assert np.array_equal(out["image"][..., :3], image)


def test_a_blob_spilling_over_the_cup_is_trimmed(run):
    image = _coffee()
    rough = _ellipse(image.shape[:2], (130, 55), (60, 52))
    mask = run("refine_mask", image=image, mask=rough)["mask"] > 0
    assert not mask[~_box_of(rough)].any()
    assert mask.sum() < 0.9 * (rough > 0).sum()
    assert mask[COFFEE].mean() > 0.95


def test_a_blob_missing_part_of_the_cup_grows_within_its_box(run):
    image = _coffee()
    rough = _ellipse(image.shape[:2], (125, 50), (40, 38))  # inside the rim, missing its edges
    mask = run("refine_mask", image=image, mask=rough)["mask"] > 0
    box = _box_of(rough)
    assert not mask[~box].any()
    assert mask[box & (rough == 0)].mean() > 0.3  # the rim in the box's corners joined
    assert mask[COFFEE].mean() > 0.95


def test_a_rough_mask_over_the_whole_image_falls_back_to_the_centre(run):
    image = _cat()
    mask = run("MASK-SEG", image=image, mask=np.full(image.shape[:2], 255, np.uint8))["mask"] > 0
    assert 0.1 < mask.mean() < 0.7


def test_empty_rough_mask_is_refused(run):
    image = _cat()
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("MASK-SEG", image=image, mask=np.zeros(image.shape[:2], np.uint8))


@pytest.mark.anyio
async def test_grabcut_reports_progress_and_stops_when_cancelled(registry):
    image = registry.store.put(_cat()).uri
    reports = []
    with anyio.CancelScope() as scope:

        async def on_progress(done, total, message):
            reports.append((done, total, message))
            scope.cancel()

        await registry.call("SOS", {"image": image}, on_progress=on_progress)
    assert scope.cancelled_caught
    assert reports == [(1, ITERATIONS, f"GrabCut iteration 1 of {ITERATIONS}")]


@pytest.mark.anyio
async def test_grabcut_reports_every_iteration(registry):
    image = registry.store.put(_cat()).uri
    reports = []

    async def on_progress(done, total, message):
        reports.append(done)

    await registry.call("SOS", {"image": image}, on_progress=on_progress)
    assert reports == list(range(1, ITERATIONS + 1))
