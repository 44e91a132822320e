"""Geometry: scale an object or zoom (RESIZE), and the outpainting canvas of CMI-PRED.

New areas get plausible colours, never invented content, so that a weak inpainter (or a
diffusion pass at partial strength) starts from them and the result still looks reasonable
if used as is. The outpainting canvas continues the image smoothly: its new area is inpainted
outward from the image's edge (OpenCV's Telea method) and blurred more the farther it lies,
like an out-of-focus extension of the scene, with nothing in it that the edge did not hold.
A zoomed-out frame's border simply repeats the edge pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InvalidInput

_RATIO_NAMES = ("left_ratio", "right_ratio", "top_ratio", "bottom_ratio")
FILL_SIDE = 256  # the canvas's new area is inpainted on a copy this size; full resolution only near the image
BLUR_PER_PIXEL = 0.5  # the continuation's blur (Gaussian sigma) grows this much per pixel away from the image
_TELEA_RADIUS = 3


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
    canvas = cv2.copyMakeBorder(image, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_CONSTANT)
    new_area = np.ones(canvas.shape[:2], bool)
    new_area[pad_top : pad_top + h, pad_left : pad_left + w] = False
    return {"caption": "", "image": _continue_outward(canvas, new_area, (pad_top, pad_left, h, w)), "mask": new_area}


def _continue_outward(canvas: np.ndarray, new_area: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Fill `new_area` around the image at `box` (top, left, height, width) with its smooth continuation.

    A small copy is inpainted and blurred by BLUR_PER_PIXEL times the distance from the image,
    then enlarged. Enlarging blurs it too, so the band next to the image, where the continuation
    must start as sharp as the image, is inpainted again at full resolution, between the image
    and the enlarged fill, and blended into it. The image's own pixels are never changed.
    """
    height, width = new_area.shape
    scale = min(1.0, FILL_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    unknown = cv2.resize(new_area.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0  # holds any new pixel
    distance = cv2.distanceTransform(unknown.astype(np.uint8), cv2.DIST_L2, 5)
    fill = _to_uint8(_progressive_blur(_inpaint(small, unknown), BLUR_PER_PIXEL * distance, unknown))
    out = np.where(new_area[..., None], cv2.resize(fill, (width, height), interpolation=cv2.INTER_LINEAR), canvas)
    if scale < 1:
        _sharpen_towards(out, box, band=1 / (BLUR_PER_PIXEL * scale))
    return out


def _sharpen_towards(canvas: np.ndarray, box: tuple[int, int, int, int], band: float) -> None:
    """Redo, in place at full resolution, the fill within `band` pixels of the image at `box`."""
    top, left, h, w = box
    reach = int(np.ceil(band * (1 + 3 * BLUR_PER_PIXEL)))  # the band and what its widest blur reads
    y0, x0 = max(0, top - reach), max(0, left - reach)
    y1, x1 = min(canvas.shape[0], top + h + reach), min(canvas.shape[1], left + w + reach)
    crop = canvas[y0:y1, x0:x1]
    ys, xs = np.arange(y0, y1, dtype=np.float32)[:, None], np.arange(x0, x1, dtype=np.float32)[None, :]
    off_y = np.maximum(0, np.maximum(top - ys, ys - (top + h - 1)))
    off_x = np.maximum(0, np.maximum(left - xs, xs - (left + w - 1)))
    distance = np.hypot(off_y, off_x)  # to the nearest pixel of the image
    near = (distance > 0) & (distance < band)
    sharp = _progressive_blur(_inpaint(crop, near), BLUR_PER_PIXEL * distance, near)[near]
    weight = (distance[near] / band)[:, None]
    crop[near] = _to_uint8(sharp * (1 - weight) + crop[near] * weight)  # crop is a view: this writes the canvas


def _inpaint(image: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Telea inpainting of an RGB or RGBA image (OpenCV takes 1 or 3 channels at a time)."""
    mask = unknown.astype(np.uint8)
    parts = [
        np.atleast_3d(cv2.inpaint(np.ascontiguousarray(image[..., i : i + 3]), mask, _TELEA_RADIUS, cv2.INPAINT_TELEA))
        for i in range(0, image.shape[2], 3)
    ]
    return np.concatenate(parts, axis=2)


def _progressive_blur(image: np.ndarray, sigma: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Blur the pixels `where`, each by its own `sigma`: a blend of the two nearest copies blurred
    by 0, 1, 2, 4, ... pixels. The other pixels keep their values."""
    out = image.astype(np.float32)
    levels = [0.0, 1.0]
    while levels[-1] < sigma[where].max(initial=0):
        levels.append(levels[-1] * 2)
    position = np.interp(sigma[where], levels, np.arange(len(levels), dtype=np.float32))
    blended = np.zeros((len(position), out.shape[2]), np.float32)
    for i, level in enumerate(levels):
        weight = np.clip(1 - np.abs(position - i), 0, 1)
        if weight.any():
            blended += (out if level == 0 else _blur(out, level))[where] * weight[:, None]
    out[where] = blended
    return out


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur; a wide one is done on a copy reduced by sigma / 2, nearly the same and far cheaper."""
    step = max(1, int(sigma // 2))
    if step == 1:
        return np.atleast_3d(cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // step), max(1, height // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=cv2.BORDER_REFLECT)
    return np.atleast_3d(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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
