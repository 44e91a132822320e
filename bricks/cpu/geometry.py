"""Geometry: scale an object or zoom (RESIZE), and the outpainting canvas of CMI-PRED.

New areas of a frame are filled by repeating the edge pixels: a weak inpainter (or a
diffusion pass at partial strength) starts from plausible colours, and the result still
looks reasonable if used as is.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InvalidInput

_RATIO_NAMES = ("left_ratio", "right_ratio", "top_ratio", "bottom_ratio")


def resize_object(mask: np.ndarray | None, image: np.ndarray | None, ratio: float) -> dict[str, np.ndarray]:
    """Scale the largest object of a mask or of a transparent image about its bottom centre,
    so that it stays standing where it stood; an opaque image is zoomed about its centre instead.
    The canvas keeps its size.
    """
    if (mask is None) == (image is None):
        raise InvalidInput("give exactly one of `mask` and `image`", param="image" if mask is not None else "mask")
    if mask is not None:
        return {"mask": _scale_object(mask, mask > 127, ratio, param="mask") > 127}
    if image.shape[2] == 4 and image[..., 3].min() < 255:
        return {"image": _scale_object(image, image[..., 3] > 0, ratio, param="image")}
    return {"image": _zoom(image, ratio)}


def caption_and_canvas(
    image: np.ndarray,
    left_ratio: float | None,
    right_ratio: float | None,
    top_ratio: float | None,
    bottom_ratio: float | None,
) -> dict[str, object]:
    """No caption without a model; with ratios, the enlarged canvas and the mask of its new area.

    A side's ratio r adds (r - 1) times the image's width (left, right) or height (top, bottom)
    on that side. When all four are equal, upstream reads r as the overall scale instead (each
    side gets (r - 1) / 2), so that "expand 2x" gives a canvas twice as wide and as tall.
    """
    ratios = (left_ratio, right_ratio, top_ratio, bottom_ratio)
    missing = [name for name, value in zip(_RATIO_NAMES, ratios, strict=True) if value is None]
    if len(missing) == 4:
        return {"caption": ""}
    if missing:
        raise InvalidInput("is missing: give all four ratios (to outpaint) or none (to caption only)", param=missing[0])
    left, right, top, bottom = ratios
    if left == right == top == bottom:
        left = right = top = bottom = (left + 1) / 2
    h, w = image.shape[:2]
    pad_left, pad_right = round(w * (left - 1)), round(w * (right - 1))
    pad_top, pad_bottom = round(h * (top - 1)), round(h * (bottom - 1))
    if pad_left == pad_right == pad_top == pad_bottom == 0:
        raise InvalidInput("adds no pixel on any side: use ratios above 1 to outpaint", param="left_ratio")
    canvas = cv2.copyMakeBorder(image, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE)
    new_area = np.ones(canvas.shape[:2], bool)
    new_area[pad_top : pad_top + h, pad_left : pad_left + w] = False
    return {"caption": "", "image": canvas, "mask": new_area}


def _scale_object(layer: np.ndarray, foreground: np.ndarray, ratio: float, *, param: str) -> np.ndarray:
    """The box of the largest connected object, scaled and put back with its bottom centre fixed;
    everything else is cleared (zero: background for a mask, transparent for an image)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=8)
    if count < 2:
        raise InvalidInput("has no object to resize (no foreground or opaque pixel)", param=param)
    x, y, w, h = stats[1 + np.argmax(stats[1:, cv2.CC_STAT_AREA]), :4]
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    box = layer[y : y + h, x : x + w]
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    if layer.ndim == 3:
        scaled = _resize_rgba(box, (new_w, new_h), interpolation)
    else:
        scaled = cv2.resize(box, (new_w, new_h), interpolation=interpolation)
    out = np.zeros_like(layer)
    _paste(out, scaled, left=x + (w - new_w) // 2, top=y + h - new_h)
    return out


def _resize_rgba(rgba: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Resize with premultiplied alpha, so the colours under transparent pixels do not bleed into the edge."""
    values = rgba.astype(np.float32)
    values[..., :3] *= values[..., 3:] / 255
    values = cv2.resize(values, size, interpolation=interpolation)
    alpha = values[..., 3:]
    values[..., :3] = np.where(alpha > 0, values[..., :3] * 255 / np.maximum(alpha, 1e-6), 0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, patch: np.ndarray, *, left: int, top: int) -> None:
    """Copy `patch` onto `canvas` at (left, top), clipped to the canvas."""
    height, width = canvas.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + patch.shape[1], width), min(top + patch.shape[0], height)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]


def _zoom(image: np.ndarray, ratio: float) -> np.ndarray:
    """Above 1, enlarge the central 1/ratio of the frame to fill it; below 1, shrink the whole
    frame into the centre and fill the border by repeating the edge pixels."""
    h, w = image.shape[:2]
    if ratio >= 1:
        crop_w, crop_h = max(1, round(w / ratio)), max(1, round(h / ratio))
        x, y = (w - crop_w) // 2, (h - crop_h) // 2
        return cv2.resize(image[y : y + crop_h, x : x + crop_w], (w, h), interpolation=cv2.INTER_LINEAR)
    small_w, small_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    left, top = (w - small_w) // 2, (h - small_h) // 2
    return cv2.copyMakeBorder(small, top, h - small_h - top, left, w - small_w - left, cv2.BORDER_REPLICATE)
