import anyio
import cv2
import numpy as np
import pytest

from bricks import InvalidInput, Registry
from bricks.cpu.segment import ITERATIONS
from tests.conftest import changed, outline, photo, trained


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_salient_object_matches_the_hand_drawn_outline(run, name):
    image = photo(name)
    mask = run("SOS", image=image)["mask"] > 0
    truth = outline(name)
    assert (mask & truth).sum() / (mask | truth).sum() > 0.88


def test_the_cats_ears_and_body_belong_to_the_cat(run):
    mask = run("SOS", image=photo("chelsea"))["mask"] > 0
    assert mask[5:25, 60:90].mean() > 0.9  # left ear
    assert mask[5:25, 330:370].mean() > 0.9  # right ear
    assert mask[250:300, 20:120].mean() > 0.8  # chest, at the frame's lower edge
    assert mask[20:80, 0:20].mean() < 0.1  # the background top left
    assert mask[200:300, 380:].mean() < 0.1  # and bottom right


def test_the_same_photo_gives_the_same_mask():
    """GrabCut (which settles the cat's doubtful pixels) seeds its colour models from OpenCV's
    per-thread RNG, which anything may advance: a server's worker thread is reused, and the
    mask must not depend on what ran there before, or content ids would never repeat."""
    from bricks.context import BrickContext
    from bricks.cpu.segment import segment_salient

    masks = []
    for _ in range(2):  # in one thread, with the RNG advanced in between
        cv2.kmeans(np.random.rand(50, 1).astype(np.float32), 3, None, (cv2.TERM_CRITERIA_MAX_ITER, 5, 0), 1, cv2.KMEANS_PP_CENTERS)
        masks.append(segment_salient(photo("chelsea"), BrickContext(weights=trained()))["mask"])
    np.testing.assert_array_equal(*masks)


def test_the_cut_out_has_soft_edges_and_the_pixels_unchanged(run):
    image = photo("chelsea")
    out = run("SOS", image=image)
    mask, alpha = out["mask"] > 0, out["image"][..., 3]
    assert np.array_equal(out["image"][..., :3], image)
    edge = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
    soft = (alpha > 10) & (alpha < 245)
    assert soft[edge].mean() > 0.3  # along the outline the alpha fades
    assert not soft[~cv2.dilate(edge.view(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)].any()  # and nowhere else
    assert (alpha[mask] > 127).mean() > 0.98 and (alpha[~mask] <= 127).mean() > 0.98


def _cat():
    return photo("chelsea")[::2, ::2].copy()  # 150 x 226, the cat's face fills the middle


def test_salient_object_of_a_tiny_image_is_refused(run):
    with pytest.raises(InvalidInput, match="`image`.*too small"):
        run("segment_salient", image=_cat()[:10, :10])


def test_without_its_model_file_the_brick_is_unavailable_and_says_how_to_fetch_it(settings, tmp_path, monkeypatch):
    registry = Registry.from_settings(changed(settings, models_dir=tmp_path / "empty"))
    backend, why = registry.backend_for(registry.get("SOS"))
    assert backend is None
    assert "u2netp" in why and "fetch-models" in why
    assert "segment_salient" not in {b.name for b in registry.available()}


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
    assert ((out["image"][..., 3] > 127) == mask).mean() > 0.98  # the soft alpha agrees with the mask
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


def test_a_rough_mask_over_the_whole_image_gives_the_main_subject(run):
    image = _cat()
    mask = run("MASK-SEG", image=image, mask=np.full(image.shape[:2], 255, np.uint8))["mask"] > 0
    truth = outline("chelsea")[::2, ::2]
    assert (mask & truth).sum() / (mask | truth).sum() > 0.85


def test_empty_rough_mask_is_refused(run):
    image = _cat()
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("MASK-SEG", image=image, mask=np.zeros(image.shape[:2], np.uint8))


@pytest.mark.anyio
async def test_segmentation_reports_progress_and_stops_when_cancelled(registry):
    image = registry.store.put(photo("chelsea")).uri
    reports = []
    with anyio.CancelScope() as scope:

        async def on_progress(done, total, message):
            reports.append((done, total, message))
            if done == 1:
                scope.cancel()

        await registry.call("SOS", {"image": image}, on_progress=on_progress)
    assert scope.cancelled_caught
    assert reports == [(0, ITERATIONS + 1, "salient-object network"), (1, ITERATIONS + 1, "GrabCut on the pixels the network is unsure of")]


@pytest.mark.anyio
async def test_segmentation_reports_every_step(registry):
    image = registry.store.put(photo("chelsea")).uri
    reports = []

    async def on_progress(done, total, message):
        reports.append(done)

    await registry.call("SOS", {"image": image}, on_progress=on_progress)
    assert reports == list(range(0, ITERATIONS + 2))
