"""KONTEXT-EDIT (beyond the paper): any English instruction, applied by FLUX.1 Kontext.

The Builder's fallback when no specialised brick fits. Kontext rescales its output to `max_area`
and snaps its input to preferred resolutions unless told otherwise, so it is asked for exactly
the working size (`max_area` = height x width, `_auto_resize=False`); the result is brought back
to the input size. With a mask, only the masked pixels may change.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..context import BrickContext
from ..errors import InvalidInput
from .diffusion import denoise, feathered_paste, fit, resize, rgb

GUIDANCE = 2.5  # FLUX.1 Kontext [dev]'s distilled guidance (the Fill checkpoint's 30 would overcook it)


def kontext_edit(image: np.ndarray, prompt: str, mask: np.ndarray | None, ctx: BrickContext) -> dict[str, np.ndarray]:
    if mask is not None and not mask.any():
        raise InvalidInput("mask is empty: mark the region that may change with 255, or leave the mask out", param="mask")
    h, w = image.shape[:2]
    height, width = fit(h, w)
    generated = denoise(
        "flux_kontext", "FluxKontextPipeline", ctx, what="kontext_edit",
        image=Image.fromarray(resize(rgb(image), (height, width))), prompt=prompt, height=height, width=width,
        max_area=height * width, _auto_resize=False, guidance_scale=GUIDANCE,
    )  # fmt: skip
    region = np.ones((h, w), bool) if mask is None else mask > 0
    return {"image": feathered_paste(image, resize(generated, (h, w)), region)}
