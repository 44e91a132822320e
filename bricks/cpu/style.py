"""Style transfer by classic filters (the CPU backend of FLUX-STYLE).

Upstream redraws the image with a FLUX style LoRA from a caption and a free style name.
Without a model, five filters stand in; a style is found by name or synonym anywhere in
the `style` text ("Pencil sketch style" -> sketch), and any other style is refused rather
than approximated.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import cv2
import numpy as np

from ..errors import InvalidInput

CARTOON_COLOURS = 8


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def _sepia(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) @ _SEPIA.T, 0, 255).astype(np.uint8)


def _sketch(rgb: np.ndarray) -> np.ndarray:
    """Colour-dodge the grey image with its blurred negative: flat areas go white, edges stay as strokes."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sigma = max(1.0, max(grey.shape) / 100)
    blurred_negative = cv2.GaussianBlur(255 - grey, (0, 0), sigma)
    return cv2.cvtColor(cv2.divide(grey, 255 - blurred_negative, scale=256), cv2.COLOR_GRAY2RGB)


def _cartoon(rgb: np.ndarray) -> np.ndarray:
    """A few flat colours (k-means on a smoothed copy) under dark outlines."""
    smooth = cv2.bilateralFilter(cv2.bilateralFilter(rgb, 9, 75, 75), 9, 75, 75)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(0)  # k-means++ seeding draws from OpenCV's RNG: same image, same colours
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    k = min(CARTOON_COLOURS, len(pixels))
    _, labels, centres = cv2.kmeans(pixels, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    flat = centres.astype(np.uint8)[labels.ravel()].reshape(rgb.shape)
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 7)
    lines = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 6)
    return np.where(lines[..., None] > 0, flat, 0).astype(np.uint8)


def _watercolour(rgb: np.ndarray) -> np.ndarray:
    return cv2.stylization(np.ascontiguousarray(rgb), sigma_s=60, sigma_r=0.45)


STYLES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[str, ...]]] = {
    "grey": (_grey, ("gray", "greyscale", "grayscale", "black and white", "b&w", "monochrome")),
    "sepia": (_sepia, ("vintage", "old photo")),
    "sketch": (_sketch, ("pencil", "pencil sketch", "pencil drawing", "drawing")),
    "cartoon": (_cartoon, ("comic", "cel shaded", "toon")),
    "watercolour": (_watercolour, ("watercolor",)),
}


def stylize(image: np.ndarray, mask: np.ndarray | None, prompt: str, style: str) -> dict[str, np.ndarray]:
    """`prompt` (a caption of the image) guides the GPU backend only; filters need no caption."""
    name = find_style(style)
    if name is None:
        raise InvalidInput(
            f"the CPU backend knows only the styles {', '.join(STYLES)} (got {style!r}); other styles need the GPU backend",
            param="style",
        )
    if mask is not None and not mask.any():
        raise InvalidInput("mask is empty: mark the part to restyle with 255, or leave the mask out for the whole image", param="mask")
    styled = STYLES[name][0](np.ascontiguousarray(image[..., :3]))
    out = image.copy()
    where = np.ones(image.shape[:2], bool) if mask is None else mask > 0
    out[where, :3] = styled[where]
    return {"image": out}


def find_style(text: str) -> str | None:
    """The known style named earliest in `text` (the longest name where two start together), or None."""
    padded = " " + re.sub(r"[^a-z&]+", " ", text.lower()) + " "
    found = [
        (padded.find(f" {alias} "), -len(alias), name)
        for name, (_, aliases) in STYLES.items()
        for alias in (name, *aliases)
        if f" {alias} " in padded
    ]
    return min(found)[2] if found else None
