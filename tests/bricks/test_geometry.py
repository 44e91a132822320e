import cv2
import numpy as np
import pytest

from bricks import InvalidInput
from tests.conftest import photo


def _coins_mask() -> np.ndarray:
    """Bright coins on the dark table: several objects, the largest one found below."""
    return np.where(photo("coins") > 150, 255, 0).astype(np.uint8)


def _largest_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    _, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
    x, y, w, h = stats[1 + np.argmax(stats[1:, cv2.CC_STAT_AREA]), :4]
    return int(x), int(y), int(w), int(h)


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize("ratio", [0.5, 1.25])
def test_resize_scales_the_largest_object_about_its_bottom_centre(run, ratio):
    mask = _coins_mask()
    x, y, w, h = _largest_box(mask)
    out = run("RESIZE", mask=mask, ratio=ratio)
    assert set(out) == {"mask"}
    nx, ny, nw, nh = _box(out["mask"])
    assert abs(nw - w * ratio) <= 2 and abs(nh - h * ratio) <= 2
    assert abs(ny + nh - (y + h)) <= 1  # same bottom edge
    assert abs((nx + nw / 2) - (x + w / 2)) <= 1  # same horizontal centre
    area, new_area = (mask[y : y + h, x : x + w] > 0).sum(), (out["mask"] > 0).sum()
    assert abs(new_area / area - ratio**2) < 0.1 * ratio**2  # only that coin's box, scaled


def test_resize_clips_an_object_that_outgrows_the_frame(run):
    mask = _coins_mask()
    x, y, w, h = _largest_box(mask)  # a coin near the top right corner
    out = run("RESIZE", mask=mask, ratio=2.5)["mask"]
    nx, ny, nw, nh = _box(out)
    assert out.shape == mask.shape
    assert (ny, ny + nh) == (0, y + h)  # cut at the top, still standing on its bottom edge
    assert (nx, nx + nw) == (x + (w - round(w * 2.5)) // 2, mask.shape[1])  # cut on the right


def test_resize_cutout_keeps_its_colours_and_transparency(run):
    rgb = photo("chelsea")[:128, :128]
    alpha = np.zeros((128, 128), np.uint8)
    cv2.ellipse(alpha, (64, 70), (30, 40), 0, 0, 360, 255, -1)
    out = run("RESIZE", image=np.dstack([rgb, alpha]), ratio=0.5)
    assert set(out) == {"image"}
    image = out["image"]
    assert image.shape == (128, 128, 4)
    x, y, w, h = _box(alpha)
    nx, ny, nw, nh = _box(image[..., 3] > 0)
    assert abs(nw - w / 2) <= 1 and abs(nh - h / 2) <= 1 and ny + nh == y + h
    opaque = image[..., 3] == 255
    assert np.abs(image[opaque][:, :3].mean(axis=0) - rgb[alpha > 0].mean(axis=0)).max() < 6  # no dark fringe


def test_zoom_in_on_an_opaque_photo(run):
    image = photo("astronaut")[::2, ::2]  # 256x256
    zoomed = run("RESIZE", image=image, ratio=2.0)["image"]
    assert zoomed.shape == image.shape
    halved = cv2.resize(zoomed, (128, 128), interpolation=cv2.INTER_AREA).astype(int)
    shifts = [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2)]
    error = {(dy, dx): np.abs(halved - image[64 + dy : 192 + dy, 64 + dx : 192 + dx]).mean() for dy, dx in shifts}
    assert min(error, key=error.get) == (0, 0) and error[0, 0] < 6  # the centre quarter, enlarged


def test_zoom_out_fills_the_border_with_edge_pixels(run):
    image = photo("rocket")[::4, ::4]  # 107x160
    out = run("RESIZE", image=image, ratio=0.5)["image"]
    assert out.shape == image.shape
    small = cv2.resize(image, (80, 54), interpolation=cv2.INTER_AREA)
    assert np.abs(out[26:80, 40:120].astype(int) - small).max() <= 1
    assert np.array_equal(out[0, 40:120], out[26, 40:120])  # top border repeats the first row


def test_resize_ratio_one_is_identity_for_a_photo(run):
    image = photo("coffee")[:100, :150]
    assert np.array_equal(run("RESIZE", image=image, ratio=1.0)["image"], image)


@pytest.mark.parametrize(
    ("args", "param"),
    [
        ({"mask": "m", "image": "i"}, "image"),
        ({}, "mask"),
        ({"mask": "empty"}, "mask"),
        ({"image": "clear"}, "image"),
    ],
)
def test_resize_refuses_bad_inputs(run, args, param):
    values = {
        "m": _coins_mask()[:64, :64],
        "i": photo("chelsea")[:64, :64],
        "empty": np.zeros((64, 64), np.uint8),
        "clear": np.zeros((64, 64, 4), np.uint8),
    }
    with pytest.raises(InvalidInput, match=f"`{param}`"):
        run("RESIZE", ratio=1.5, **{name: values[key] for name, key in args.items()})


def test_resize_ratio_out_of_range_is_refused(run):
    with pytest.raises(InvalidInput, match="`ratio`"):
        run("RESIZE", mask=_coins_mask(), ratio=0.0)


def test_caption_only_without_ratios(run):
    out = run("CMI-PRED", image=photo("chelsea")[:64, :64])
    assert out == {"caption": ""}


def test_canvas_extends_one_side(run):
    image = photo("chelsea")[:100, :120]
    out = run("caption_and_canvas", image=image, left_ratio=1.5, right_ratio=1.0, top_ratio=1.0, bottom_ratio=1.0)
    canvas, mask = out["image"], out["mask"]
    assert canvas.shape == (100, 180, 3) and mask.shape == (100, 180)
    assert np.array_equal(canvas[:, 60:], image)
    assert np.all(mask[:, :60] == 255) and not mask[:, 60:].any()
    assert np.abs(canvas[:, 59].astype(int) - image[:, 0]).mean() < 10  # continues from the edge column


def _side_bands(canvas: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The new area beside each side of the image (corners left out), and the axis that runs away from the image."""
    rows, cols = np.nonzero(~mask.all(axis=1))[0], np.nonzero(~mask.all(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    bands = [canvas[top:bottom, :left], canvas[top:bottom, right:], canvas[:top, left:right], canvas[bottom:, left:right]]
    return [(band.astype(np.float32), away) for band, away in zip(bands, (1, 1, 0, 0), strict=True) if band.size]


def _streaks(band: np.ndarray, away: int) -> tuple[int, float]:
    """Streaks that run away from the image: the longest run of identical consecutive lines (columns
    of a side band, rows of a top or bottom one), and how much more the band changes across the
    streak direction than along it (1 for an even blur, without bound for repeated edge pixels)."""
    along = np.abs(np.diff(band, axis=away))
    across = np.abs(np.diff(band, axis=1 - away))
    identical = "".join("1" if line == 0 else "0" for line in along.max(axis=(1 - away, 2)))
    return max(len(run) for run in identical.split("0")), float(across.mean() / (along.mean() + 1e-3))


# repeated edge pixels (BORDER_REPLICATE, the fill this replaced) score runs of the whole band's
# width and ratios of 2,150 to 18,800 on these; the continuation runs of at most 2 and ratios of 1.6 to 3.0
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
@pytest.mark.parametrize("ratios", [(1.5, 1.5, 1.5, 1.5), (2.0, 1.0, 1.0, 1.0), (1.0, 1.4, 1.3, 1.0)])
def test_canvas_continues_the_image_without_streaks(run, name, ratios):
    image = photo(name)
    out = run("CMI-PRED", image=image, **dict(zip(("left_ratio", "right_ratio", "top_ratio", "bottom_ratio"), ratios)))
    canvas, mask = out["image"], out["mask"] > 0
    top, left = (int(np.argmin(mask.all(axis=axis))) for axis in (1, 0))
    h, w = image.shape[:2]
    assert np.array_equal(canvas[top : top + h, left : left + w], image)  # the image's pixels, untouched
    assert mask.sum() == mask.size - h * w and not mask[top : top + h, left : left + w].any()
    for band, away in _side_bands(canvas, mask):
        longest_run, anisotropy = _streaks(band, away)
        assert longest_run <= 4 and anisotropy < 3.5
    ring = np.concatenate([edge.reshape(-1, 3) for edge in (image[:16], image[-16:], image[:, :16], image[:, -16:])])
    fill = canvas[mask]
    assert (fill >= ring.min(axis=0)).all() and (fill <= ring.max(axis=0)).all()  # no colour the image's edges lack


def test_canvas_blurs_more_the_farther_from_the_image(run):
    image = photo("astronaut")
    canvas = run("CMI-PRED", image=image, left_ratio=2.0, right_ratio=1.0, top_ratio=1.0, bottom_ratio=1.0)["image"]
    detail = np.abs(np.diff(canvas[:, :512].astype(np.float32), axis=0)).mean(axis=(0, 2))  # column by column
    quarters = detail[::-1].reshape(4, 128).mean(axis=1)  # nearest the image first: about 0.93, 0.08, 0.05, 0.04
    assert np.all(np.diff(quarters) < 0) and quarters[0] > 5 * quarters[2]  # (repeated edge pixels: 5.0 in all four)
    edge_detail = np.abs(np.diff(image[:, 0].astype(np.float32), axis=0)).mean()
    assert detail[-1] > 0.5 * edge_detail  # nearly as sharp as the image where it starts (3.5 against 5.0)
    assert np.abs(canvas[:, 511].astype(int) - image[:, 0]).mean() < 12  # and from the image's own edge colours (4.0)


def test_canvas_of_a_transparent_image_continues_its_alpha(run):
    rgb = photo("chelsea")[:100, :120]
    alpha = np.full((100, 120), 255, np.uint8)
    alpha[:, :20] = 0  # transparent at the left edge, which the new area continues
    image = np.dstack([rgb, alpha])
    canvas = run("CMI-PRED", image=image, left_ratio=1.5, right_ratio=1.5, top_ratio=1.0, bottom_ratio=1.0)["image"]
    assert canvas.shape == (100, 240, 4) and np.array_equal(canvas[:, 60:180], image)
    assert canvas[:, :40, 3].max() < 60 and canvas[:, 200:, 3].min() > 200


def test_equal_ratios_scale_the_whole_canvas(run):
    image = photo("astronaut")[:80, :100]
    out = run("CMI-PRED", image=image, left_ratio=2.0, right_ratio=2.0, top_ratio=2.0, bottom_ratio=2.0)
    canvas, mask = out["image"], out["mask"]
    assert canvas.shape == (160, 200, 3)
    assert np.array_equal(canvas[40:120, 50:150], image)
    assert not mask[40:120, 50:150].any()
    assert (mask > 0).sum() == 160 * 200 - 80 * 100


def test_canvas_needs_all_four_ratios(run):
    with pytest.raises(InvalidInput, match="`top_ratio`"):
        run("CMI-PRED", image=photo("chelsea")[:64, :64], left_ratio=1.5, right_ratio=1.5)


def test_canvas_with_nothing_to_add_is_refused(run):
    with pytest.raises(InvalidInput, match="`left_ratio`"):
        run("CMI-PRED", image=photo("chelsea")[:64, :64], left_ratio=1, right_ratio=1, top_ratio=1, bottom_ratio=1)
