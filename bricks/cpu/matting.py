"""Soft edges for binary masks: a colour guided filter (He, Sun and Tang, 2010) along the boundary.

Masks stay binary everywhere in the project; whoever composites (a cut-out's alpha, a new
background, a pasted object) turns the mask into an alpha here. The filter follows the image's
own edges, so the alpha is 1/2 where the image changes from subject to background, fades
across fur and hair strands instead of cutting them, and is exactly the mask away from the
boundary. It runs on a copy of at most `WORK_SIDE` px ("fast guided filter") and its linear
coefficients are upsampled, so a large photo costs little more than a small one.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 1024
RADIUS = 0.012  # window radius, share of the long side of the working copy
EPS = 1e-3  # regularisation: smaller follows the image's edges more closely


def soft_alpha(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 alpha in [0, 1], the size of `mask`: 1 inside the object, 0 outside, soft at its edge."""
    selected = mask > 127
    if not selected.any() or selected.all():
        return selected.astype(np.float32)
    h, w = selected.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    guide = cv2.resize(image[..., :3], small, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    target = cv2.resize(selected.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    radius = max(2, round(RADIUS * max(small)))
    # Away from the boundary the mask is certain and kept exactly; the filter runs only near it.
    band = max(2, round(2 * radius / scale))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inside = cv2.erode(selected.view(np.uint8), kernel).astype(bool)
    unsure = cv2.dilate(selected.view(np.uint8), kernel).astype(bool) & ~inside
    near = cv2.resize(unsure.view(np.uint8), small, interpolation=cv2.INTER_NEAREST)
    near = cv2.dilate(near, np.ones((2 * radius + 3, 2 * radius + 3), np.uint8)).astype(bool)  # and the windows they average
    a, b = _coefficients(guide, target, radius, near)
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)[unsure]
    b = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)[unsure]
    alpha = inside.astype(np.float32)
    alpha[unsure] = np.clip(np.einsum("nc,nc->n", a, image[..., :3][unsure].astype(np.float32) / 255) + b, 0, 1)
    return alpha


def _coefficients(guide: np.ndarray, target: np.ndarray, radius: int, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel linear model target ≈ a · guide + b over each window, averaged (the colour guided
    filter); solved only at the pixels `near` the boundary, elsewhere a = 0 and b = the local mean."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = mean(guide)
    mean_p = mean(target)
    cov_ip = mean(guide * target[..., None]) - mean_i * mean_p[..., None]
    outer = guide[..., :, None] * guide[..., None, :]
    var = mean(outer.reshape(*guide.shape[:2], 9)).reshape(*guide.shape[:2], 3, 3)
    var -= mean_i[..., :, None] * mean_i[..., None, :]
    a = np.zeros_like(guide)
    a[near] = np.linalg.solve(var[near] + EPS * np.eye(3, dtype=np.float32), cov_ip[near][..., None])[..., 0]
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return mean(a), mean(b)


def blend_inside(original: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8: `edited` inside the mask, `original` exactly outside it, the change fading in along
    the mask's inner edge as the image's own edges go, so a masked edit leaves no seam."""
    weight = np.clip(2 * soft_alpha(original, mask) - 1, 0, 1) * (mask > 127)
    return np.rint(original + (edited.astype(np.float32) - original) * weight[..., None]).astype(np.uint8)


def cut_out(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA: the image with the mask's soft alpha."""
    alpha = np.rint(soft_alpha(image, mask) * 255).astype(np.uint8)
    return np.dstack([image[..., :3], alpha])
