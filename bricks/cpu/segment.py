"""Object segmentation on the CPU (SOS, MASK-SEG): the U²-Netp network, refined by GrabCut.

The network's map decides every pixel it is sure of. Where it is unsure of a large part of
the picture (more than `REFINE_SHARE`: the cat whose body runs out of the frame), GrabCut,
seeded by it, settles those pixels (between `UNSURE` and `SURE`), without letting its colour
models spread into a background the network has ruled out; elsewhere the network's own
threshold is better (IoU against hand-drawn outlines, bench/cpu_segment.py). The cut-out
gets a soft alpha from the image's own edges (`matting.soft_alpha`); the mask stays binary.
MASK-SEG runs the same on the rough mask's box plus a ring of context, as upstream does.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..context import BrickContext
from ..errors import InvalidInput
from ..images import binary
from .matting import cut_out
from .salient import saliency

WORK_SIDE = 320  # px on the long side for GrabCut, whose cost grows quickly with size
ITERATIONS = 3
UNSURE, SURE = 0.002, 0.9  # the network's probabilities between which GrabCut decides
FAR = 0.15  # share of the long side beyond which the network's background is taken as sure
SEED_BACKGROUND = 0.05  # and below this probability
REFINE_SHARE = 0.15  # SOS runs GrabCut only when the unsure pixels are more than this share of the image
CONTEXT = 0.1  # MASK-SEG also looks this share of the box's long side around the box
MIN_SIDE = 16
GMM_COMPONENTS = 5  # GrabCut fits 5-component colour models: each needs that many seeds


def segment_salient(image: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    """The main subject, found by the salient-object network."""
    if min(image.shape[:2]) < MIN_SIDE:
        raise InvalidInput(f"image is smaller than {MIN_SIDE} px on a side; too small to segment", param="image")
    rgb = np.ascontiguousarray(image[..., :3])
    ctx.progress(0, ITERATIONS + 1, "salient-object network")
    p = saliency(rgb, ctx.weights)
    mask = binary(_settle(rgb, p, p > 0.5, ctx, refine_share=REFINE_SHARE))
    if not mask.any():
        raise InvalidInput("no salient object stands out from the background; pass a mask of the object instead", param="image")
    return {"mask": mask, "image": cut_out(image, mask)}


def refine_mask(image: np.ndarray, mask: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    """The object inside the rough mask's box. The network looks at the box plus a ring of
    context; where it is unsure, GrabCut decides with the rough mask as probable object, so a
    mask that misses part of the object or spills over it is corrected either way. Nothing
    outside the box is kept."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("mask is empty: paint roughly over the object to segment", param="mask")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = max(MIN_SIDE // 2, round(CONTEXT * max(bottom - top, right - left)))
    y0, y1 = max(0, top - pad), min(mask.shape[0], bottom + pad)
    x0, x1 = max(0, left - pad), min(mask.shape[1], right + pad)
    if min(y1 - y0, x1 - x0) < MIN_SIDE:
        raise InvalidInput(f"mask's box is smaller than {MIN_SIDE} px on a side: paint over more of the object", param="mask")

    crop = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    rough = mask[y0:y1, x0:x1] > 127
    if rough.sum() < GMM_COMPONENTS:
        raise InvalidInput("mask is too small to seed a segmentation: paint over more of the object", param="mask")
    ctx.progress(0, ITERATIONS + 1, "salient-object network")
    p = saliency(crop, ctx.weights)
    if not (rough & (p > 0.5)).any():
        p = np.full_like(p, 0.5)  # the network sees another object: let GrabCut decide from the rough mask alone
    # Only the rough mask's core may be sure object and nothing inside the mask is ruled out:
    # GrabCut settles the rest, so a rough mask spilling onto a neighbour gets trimmed.
    side = max(3, round(CONTEXT * max(bottom - top, right - left)) | 1)
    core = cv2.erode(rough.view(np.uint8), np.ones((side, side), np.uint8)).astype(bool)
    p = np.where(rough, np.maximum(p, UNSURE * 2), p)
    p = np.where(core, p, np.minimum(p, SURE - 0.01))
    fg = _settle(crop, p, rough if rough.mean() < 0.95 else p > 0.5, ctx)
    out = np.zeros(mask.shape, bool)
    out[top:bottom, left:right] = fg[top - y0 : bottom - y0, left - x0 : right - x0]
    if not out.any():
        raise InvalidInput("no object could be separated inside the mask's box", param="mask")
    out = binary(out)
    return {"mask": out, "image": cut_out(image, out)}


def _settle(rgb: np.ndarray, p: np.ndarray, probable: np.ndarray, ctx: BrickContext, *, refine_share: float = 0.0) -> np.ndarray:
    """Foreground (bool, full size): the network's sure pixels as they are, GrabCut's verdict on
    the rest when they are more than `refine_share` of the image. `probable`: the pixels GrabCut
    starts from as probable foreground."""
    ctx.check_cancelled()
    ctx.progress(1, ITERATIONS + 1, "GrabCut on the pixels the network is unsure of")
    sure_fg, sure_bg = p >= SURE, p <= UNSURE
    unsure = ~(sure_fg | sure_bg)
    if not unsure.any() or unsure.mean() <= refine_share:
        ctx.progress(ITERATIONS + 1, ITERATIONS + 1)
        return p > 0.5
    h, w = p.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    start = cv2.resize(probable.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    small_p = cv2.resize(p, size, interpolation=cv2.INTER_AREA)
    labels = np.where(start, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[small_p >= SURE] = cv2.GC_FGD
    # Sure background only well away from the object: pixels next to it that the network
    # missed are often more of it, and seeding them as background would teach GrabCut their colours.
    distance = cv2.distanceTransform(np.uint8(~start), cv2.DIST_L2, 3)
    labels[(small_p <= SEED_BACKGROUND) & (distance > FAR * max(size))] = cv2.GC_BGD
    if min(np.count_nonzero(np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))), np.count_nonzero(np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)))) < GMM_COMPONENTS:
        return p > 0.5
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means on OpenCV's (per-thread) RNG: same image, same mask
    for i in range(ITERATIONS):
        ctx.check_cancelled()
        cv2.grabCut(small, labels, None, bgd, fgd, 1, cv2.GC_INIT_WITH_MASK if i == 0 else cv2.GC_EVAL)
        ctx.progress(i + 2, ITERATIONS + 1, f"GrabCut iteration {i + 1} of {ITERATIONS}")
    verdict = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).view(np.uint8) * np.uint8(255)
    verdict = cv2.resize(verdict, (w, h), interpolation=cv2.INTER_LINEAR) > 127
    return sure_fg | (unsure & verdict)
