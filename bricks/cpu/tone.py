"""Tone: the README's brightness tool (BRIGHT) and a general photo adjustment (ADJUST).

Both change colour channels only; an image's alpha passes through untouched.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from ..errors import InvalidInput
from .matting import blend_inside

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_WARMTH_GAIN = 0.2  # warmth 1 multiplies red by 1.2 and blue by 0.8


def brightness(image: np.ndarray, ratio: float) -> dict[str, np.ndarray]:
    """Pillow's brightness enhancer at factor 2 * ratio, as upstream: 0 black, 0.5 unchanged."""
    rgb = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    return {"image": _with_alpha(image, np.asarray(ImageEnhance.Brightness(rgb).enhance(2 * ratio)))}


def adjust(
    image: np.ndarray,
    mask: np.ndarray | None,
    brightness: float,
    contrast: float,
    saturation: float,
    gamma: float,
    warmth: float,
    sharpness: float,
) -> dict[str, np.ndarray]:
    """Apply, in photo-editor order, white balance, brightness, contrast, gamma, saturation and
    sharpness; neutral values are skipped, so all-neutral gives back the identical pixels.
    With a mask, pixels outside it are left exactly as they were, and the change fades in along
    the mask's inner edge (following the image's own edges), so a masked face or sky has no seam."""
    region = None if mask is None else mask > 127
    if region is not None and not region.any():
        raise InvalidInput("is empty (no foreground pixel): nothing to adjust", param="mask")
    original = image[..., :3]
    x = original.astype(np.float32)
    if warmth:
        x *= np.array([1 + _WARMTH_GAIN * warmth, 1, 1 - _WARMTH_GAIN * warmth], np.float32)
    if brightness:
        x += 255 * brightness
    if contrast:
        x = (x - 127.5) * (1 + contrast) + 127.5
    if gamma != 1:
        x = 255 * cv2.pow(np.clip(x, 0, 255) / 255, 1 / gamma)
    if saturation:
        grey = (x @ _LUMA)[..., None]
        x = grey + (x - grey) * (1 + saturation)
    if sharpness:
        sigma = max(1.0, min(x.shape[:2]) / 400)  # detail scale grows with the image
        x += sharpness * (x - cv2.GaussianBlur(x, (0, 0), sigma))
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if region is not None:
        out = blend_inside(original, out, mask)
    return {"image": _with_alpha(image, out)}


def _with_alpha(source: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, source[..., 3:]], axis=2) if source.shape[2] == 4 else rgb
