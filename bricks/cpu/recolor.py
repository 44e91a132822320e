"""Recolour the masked object (the CPU backend of FLUX-RCM).

Upstream repaints colour or material with a FLUX LoRA. Without a model only colour can
change: in HLS the masked pixels take the named colour's hue and saturation and their mean
lightness moves to its lightness, so shading and texture survive. HLS saturation is relative
to what each lightness allows, so highlights turn pale and shadows deep instead of clipping.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InvalidInput
from .colors import HINT, find_color

# A recoloured surface keeps some shading: lightness targets stay off pure black and white.
LIGHTNESS_RANGE = (0.15, 0.92)


def recolor_material(image: np.ndarray, mask: np.ndarray, prompt: str) -> dict[str, np.ndarray]:
    found = find_color(prompt)
    if found is None:
        raise InvalidInput(
            f"names no colour (use {HINT}); the CPU backend only recolours, and changing the material "
            "(wood, metal, glass, ...) needs the GPU backend",
            param="prompt",
        )
    inside = mask > 0
    if not inside.any():
        raise InvalidInput("mask is empty: mark the object to recolour with 255", param="mask")
    out = image.copy()
    out[inside, :3] = shift_to_color(image[inside, :3], found[1])
    return {"image": out}


def shift_to_color(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """N x 3 uint8 RGB pixels moved to the colour `rgb`, keeping their lightness variations."""
    hls = _to_hls(pixels[:, None, :])
    target = _to_hls(np.array([[rgb]], np.uint8))[0, 0]
    lightness = hls[..., 1]  # a view: edited in place
    lightness += np.clip(target[1], *LIGHTNESS_RANGE) - lightness.mean()
    np.clip(lightness, 0, 1, out=lightness)
    hls[..., 0], hls[..., 2] = target[0], target[2]
    rgb_out = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
    return np.clip(np.rint(rgb_out * 255), 0, 255).astype(np.uint8)[:, 0]


def _to_hls(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HLS)
