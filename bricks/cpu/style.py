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


WATERCOLOUR_SEED = 0  # the paper and the flow of the pigment: the same image always gets the same painting
_WASH_SIDE = 384  # washes are found on a copy this size: larger images get the same shapes, only smoother
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _watercolour(rgb: np.ndarray) -> np.ndarray:
    """Soft washes of lighter, paler pigment on textured paper.

    Mean-shift regions of a small copy are the washes; enlarged, pushed by a smooth random flow
    and blurred, they bleed a little into each other. The pigment is thinned (lighter and less
    saturated, in Lab; the palest tints become bare paper), then its density d rises where it
    pools: on the darker side of every wash border (wet edges, in the wash's own colour), in
    granulation at two scales and in a slow unevenness of the wash. Density darkens a colour C by
    (C - C²)(d - 1) (Bousseau et al. 2006): bare paper stays white, and with d - 1 at most 0.8
    the darkest pigment stays above luminance 30, far from black.
    """
    h, w = rgb.shape[:2]
    unit = max(0.5, max(h, w) / 512)  # the pixel size the effect is tuned on
    rng = np.random.default_rng(WATERCOLOUR_SEED)
    scale = min(1.0, _WASH_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    small = cv2.bilateralFilter(small, 7, 30, 3)
    washes = cv2.addWeighted(cv2.pyrMeanShiftFiltering(small, 7, 28), 0.85, small, 0.15, 0)
    colour = cv2.resize(washes, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255

    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    flow_x, flow_y = (_smooth_noise((h, w), 12 * unit, rng) * 2.5 * unit for _ in range(2))
    colour = cv2.remap(colour, grid_x + flow_x, grid_y + flow_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    colour = cv2.GaussianBlur(colour, (0, 0), 1.2 * unit)

    lab = cv2.cvtColor(colour, cv2.COLOR_RGB2LAB)  # float: L in 0..100
    darkness = 1 - lab[..., 0] / 100
    thinned = np.clip((0.72 * darkness - 0.12) / 0.88, 0, 1)  # thinner pigment; the palest tints are bare paper
    lab[..., 0] = 100 * (1 - thinned)
    lab[..., 1:] *= (0.8 * np.minimum(1, thinned / 0.1))[..., None]  # less saturated, fading out on bare paper
    colour = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1)

    luminance = colour @ _LUMA
    wet_edges = np.clip((cv2.GaussianBlur(luminance, (0, 0), 3 * unit) - luminance) / 0.08, 0, 1)
    paper = _smooth_noise((h, w), max(1.0, 1.2 * unit), rng)  # finer than a pixel would be mere noise
    granulation = _smooth_noise((h, w), 4 * unit, rng)
    unevenness = _smooth_noise((h, w), 24 * unit, rng)
    density = np.clip(1.2 * wet_edges + 0.08 * paper + 0.12 * granulation + 0.25 * unevenness, -0.6, 0.8)  # d - 1
    colour -= (colour - colour * colour) * density[..., None]
    colour *= (1 - 0.0125 * (1 + np.tanh(paper)))[..., None]  # the paper's grain shows even where it is bare
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise blurred by `sigma` pixels and scaled back to unit deviation; wide blurs are
    drawn on a coarser grid and enlarged, which looks the same and costs far less."""
    step = max(1, int(sigma // 2))
    coarse = (max(1, -(-shape[0] // step)), max(1, -(-shape[1] // step)))
    noise = cv2.GaussianBlur(rng.standard_normal(coarse, dtype=np.float32), (0, 0), sigma / step)
    if step > 1:
        noise = cv2.resize(noise, shape[::-1], interpolation=cv2.INTER_CUBIC)
    deviation = noise.std()
    return noise / deviation if deviation > 0 else noise * 0  # a single pixel has no texture


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
