"""Quick object removal (FASTINPAINT): OpenCV Telea inpainting plus the strength for a diffusion refine.

Upstream fills with LaMa and then grades its own result to tell FLUX-INPAINT how hard to
repaint it (`WorkflowExecutor.dummy_fastinpaint` and `check_quality` in upstream
`legodemo.py`). The same grading is applied here to the Telea fill.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..errors import InvalidInput

# Upstream grows the mask by a 25 px square so the object's fringe and shadow go too; its
# workflows run at 1024 px on the long side, so the kernel is scaled to the image here.
DILATE, DILATE_AT = 25, 1024
TELEA_RADIUS = 5
# (largest grey-level gap, strength): a fill whose brightness differs from its surroundings
# by more needs a stronger repaint; past the last bound the strength is 0.9.
GAP_STRENGTH = ((30.0, 0.7), (70.0, 0.8))
LARGE_MASK = 0.4  # above this share of the image the refine starts from noise (strength 1.0)


def fast_inpaint(image: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    grown = grow_mask(mask)
    out = telea(image[..., :3], grown)
    if image.shape[2] == 4:
        out = np.dstack([out, telea(image[..., 3], grown)])
    return {"image": out, "score": refine_strength(out, grown > 0)}


def grow_mask(mask: np.ndarray) -> np.ndarray:
    """The mask grown as upstream grows it before filling; refuses a mask with nothing to fill or to fill from."""
    if not mask.any():
        raise InvalidInput("mask is empty: mark the region to remove with 255", param="mask")
    side = max(3, round(DILATE * max(mask.shape) / DILATE_AT))
    grown = cv2.dilate(mask, np.ones((side, side), np.uint8))
    if grown.all():
        raise InvalidInput("mask, once grown, covers the whole image: nothing is left to fill from", param="mask")
    return grown


def telea(pixels: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """OpenCV's Telea fill of the grown mask, for colour or for one channel (an alpha)."""
    return cv2.inpaint(np.ascontiguousarray(pixels), grown, TELEA_RADIUS, cv2.INPAINT_TELEA)


def refine_strength(filled: np.ndarray, region: np.ndarray) -> float:
    """Upstream's rule: grade the grey-level gap between the filled region and the rest of the image."""
    if region.mean() > LARGE_MASK:
        return 1.0
    grey = np.asarray(Image.fromarray(np.ascontiguousarray(filled[..., :3])).convert("L"), dtype=np.float64)
    gap = abs(grey[region].mean() - grey[~region].mean())
    return next((strength for bound, strength in GAP_STRENGTH if gap <= bound), 0.9)
