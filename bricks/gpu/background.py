"""FLUX-CBG on the GPU: a new background painted by FLUX.1 Canny around the subject's edges.

The Canny checkpoint generates a whole image from a prompt and an edge map. Giving it only the
subject's edges (its outline and the lines inside it) lets it paint the described scene around a
subject-shaped hole that lines up with the real one; the original subject is then pasted back
exactly, with a slight feather on the background side of the seam only.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..context import BrickContext
from ..errors import InvalidInput
from .diffusion import denoise, feathered_paste, fit, resize, rgb

CANNY_LOW, CANNY_HIGH = 50, 200  # the thresholds of the FLUX.1-Canny-dev model card's example


def change_background(image: np.ndarray, mask: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    background = mask > 0
    if not background.any():
        raise InvalidInput("mask is empty: it must mark the background with 255 (the subject stays 0)", param="mask")
    if background.all():
        raise InvalidInput("mask covers the whole image: it must leave the subject at 0 and mark only the background", param="mask")
    h, w = image.shape[:2]
    size = fit(h, w)
    edges = subject_edges(resize(rgb(image), size), resize(mask, size) == 0)
    generated = denoise(
        "flux_canny", "FluxControlPipeline", ctx, what="change_background",
        prompt=prompt, control_image=Image.fromarray(edges), height=size[0], width=size[1],
        guidance_scale=ctx.models.config.runtime.guidance,
    )  # fmt: skip
    return {"image": feathered_paste(image, resize(generated, (h, w)), background)}


def subject_edges(image: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """White-on-black RGB edge map of the subject only: Canny edges inside it plus its outline."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    inside = cv2.dilate(subject.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # edges on the seam count
    outline = cv2.morphologyEx(subject.astype(np.uint8) * 255, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edges = ((cv2.Canny(grey, CANNY_LOW, CANNY_HIGH) > 0) & inside) | outline
    return np.repeat((edges.astype(np.uint8) * 255)[..., None], 3, axis=2)
