"""Background replacement (the CPU backend of FLUX-CBG).

Upstream paints a new scene from the prompt, guided by the subject's edges, and pastes
the subject back. Without a model the background can become a plain colour named in the
prompt, or a blur of itself when the prompt asks for one. The new background comes in through
a soft alpha that follows the image's own edges (`matting.soft_alpha`), so the subject keeps
its fur and hair against it without a jagged rim; away from its outline the subject is untouched.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from ..errors import InvalidInput
from .colors import HINT, find_color
from .matting import soft_alpha

_BLUR_WORDS = re.compile(r"\b(blur\w*|bokeh|out[\s-]+of[\s-]+focus|defocus\w*|depth[\s-]+of[\s-]+field)\b")
BLUR_SIGMA = 0.02  # share of the long side


def change_background(image: np.ndarray, mask: np.ndarray, prompt: str) -> dict[str, np.ndarray]:
    background = mask > 0
    if not background.any():
        raise InvalidInput("mask is empty: it must mark the background with 255 (the subject stays 0)", param="mask")
    if background.all():
        raise InvalidInput("mask covers the whole image: it must leave the subject at 0 and mark only the background", param="mask")
    rgb = np.ascontiguousarray(image[..., :3])
    if _BLUR_WORDS.search(prompt.lower()):
        new = _blur_background(rgb, background)
    elif (found := find_color(prompt)) is not None:
        new = np.empty_like(rgb)
        new[:] = found[1]
    else:
        raise InvalidInput(
            f"names neither a colour ({HINT}) nor a blur (blur, bokeh, out of focus); the CPU backend "
            "can only fill the background with a colour or blur it, described scenes need the GPU backend",
            param="prompt",
        )
    weight = soft_alpha(rgb, mask)[..., None]  # 1 in the background, 0 on the subject, soft between
    out = image.copy()
    out[..., :3] = np.rint(rgb * (1 - weight) + new * weight).astype(np.uint8)
    return {"image": out}


def _blur_background(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Blur the background from background pixels only, so the subject's colours do not bleed into it."""
    sigma = max(1.0, BLUR_SIGMA * max(rgb.shape[:2]))
    weight = background.astype(np.float32)
    blurred = cv2.GaussianBlur(rgb.astype(np.float32) * weight[..., None], (0, 0), sigma)
    coverage = cv2.GaussianBlur(weight, (0, 0), sigma)
    return blurred / np.maximum(coverage, 1e-6)[..., None]
