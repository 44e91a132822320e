"""Object segmentation without weights (SOS, MASK-SEG): GrabCut on a small working copy.

GrabCut runs one iteration per call so the brick can report progress and stop when the
call is cancelled. Upstream's SOS is a matting network; MASK-SEG runs it on the crop of
the rough mask's box and pastes the result back, and the refinement here keeps that shape.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..context import BrickContext
from ..errors import InvalidInput

WORK_SIDE = 384  # px on the long side; GrabCut's cost grows quickly with size
ITERATIONS = 5
CENTRE_MARGIN = 0.1  # share of each side assumed to be background when nothing else is known
CONTEXT = 0.1  # MASK-SEG also looks this share of the box's long side around the box
MIN_BACKGROUND = 0.05  # share of MASK-SEG's crop outside the mask needed to learn the background's colours
MIN_SIDE = 16
GMM_COMPONENTS = 5  # GrabCut fits 5-component colour models: each needs that many seeds


def segment_salient(image: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    """The object in the middle of the picture, separated from a background assumed at the borders."""
    if min(image.shape[:2]) < MIN_SIDE:
        raise InvalidInput(f"image is smaller than {MIN_SIDE} px on a side; too small to segment", param="image")
    small = _work_copy(image[..., :3])
    fg = _grabcut(small, _centre_prior(small.shape[:2]), ctx)
    mask = _upscale(fg, image.shape[:2])
    if not mask.any():
        raise InvalidInput("no salient object stands out from the background; try text-grounded segmentation", param="image")
    return {"mask": mask, "image": _preview(image, mask)}


def refine_mask(image: np.ndarray, mask: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    """The object inside the rough mask's box. GrabCut runs on the box plus a ring of context;
    the mask is probable object and everything else probable background, so a mask that misses
    part of the object or spills over it is corrected either way. Nothing outside the box is kept."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("mask is empty: paint roughly over the object to segment", param="mask")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = max(MIN_SIDE // 2, round(CONTEXT * max(bottom - top, right - left)))
    y0, y1 = max(0, top - pad), min(mask.shape[0], bottom + pad)
    x0, x1 = max(0, left - pad), min(mask.shape[1], right + pad)

    small = _work_copy(image[y0:y1, x0:x1, :3])
    sh, sw = small.shape[:2]
    rough = cv2.resize(mask[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_AREA) > 0  # thin strokes survive
    if rough.sum() < GMM_COMPONENTS:
        raise InvalidInput("mask is too small to seed a segmentation: paint over more of the object", param="mask")
    if (~rough).mean() < MIN_BACKGROUND:  # the mask is (nearly) the whole image: nothing to learn the background from
        seeds = _centre_prior((sh, sw))
    else:
        seeds = np.where(rough, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)

    fg = _upscale(_grabcut(small, seeds, ctx), (y1 - y0, x1 - x0))
    out = np.zeros_like(mask)
    out[top:bottom, left:right] = fg[top - y0 : bottom - y0, left - x0 : right - x0]
    if not out.any():
        raise InvalidInput("no object could be separated inside the mask's box", param="mask")
    return {"mask": out, "image": _preview(image, out)}


def _work_copy(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = WORK_SIDE / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _centre_prior(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    my, mx = max(1, round(h * CENTRE_MARGIN)), max(1, round(w * CENTRE_MARGIN))
    seeds = np.full(shape, cv2.GC_BGD, np.uint8)
    seeds[my : h - my, mx : w - mx] = cv2.GC_PR_FGD
    return seeds


def _grabcut(rgb: np.ndarray, seeds: np.ndarray, ctx: BrickContext) -> np.ndarray:
    """Foreground (bool) after `ITERATIONS` GrabCut rounds, one call each, reporting between them."""
    labels = seeds.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    for i in range(ITERATIONS):
        ctx.check_cancelled()
        mode = cv2.GC_INIT_WITH_MASK if i == 0 else cv2.GC_EVAL
        cv2.grabCut(rgb, labels, None, bgd, fgd, 1, mode)
        ctx.progress(i + 1, ITERATIONS, f"GrabCut iteration {i + 1} of {ITERATIONS}")
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _upscale(fg: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Back to full size; linear interpolation then a threshold gives smoother edges than nearest."""
    h, w = shape
    up = cv2.resize(fg.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(up > 127, 255, 0).astype(np.uint8)


def _preview(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask as its alpha channel: the cut-out object."""
    return np.dstack([image[..., :3], mask])
