"""The general instruction editors: FLUX.1 Kontext (KONTEXT-EDIT), Qwen-Image-Edit (QWEN-EDIT)
and FLUX.2 [klein] (KLEIN-EDIT), beyond the paper.

The Builder's choice when no precise brick fits (adding an object, changing an action, text in
the image). Each runs at a working size (sides multiples of 16, at most 1024 px) and brings the
result back to the input size; with a mask, only the masked pixels may change (the rest stays
exact). Reference images ("put this logo on her shirt") go in after the image, at their own size.

Per-model facts this relies on (diffusers 0.42.1):
- Kontext rescales its output to `max_area` and snaps its input to preferred resolutions unless
  told otherwise, so it is asked for exactly the working size.
- Qwen-Image-Edit-Plus runs true classifier-free guidance only when given a negative prompt.
- FLUX.2 [klein] 4B is step-distilled (4 steps, no guidance) and refuses images under 64 px a side.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ..context import BrickContext
from ..errors import InvalidInput
from .diffusion import check_mask, denoise, feathered_paste, fit, resize, rgb

KONTEXT_GUIDANCE = 2.5  # FLUX.1 Kontext [dev]'s distilled guidance (the Fill checkpoint's 30 would overcook it)
QWEN_TRUE_CFG = 4.0  # Qwen-Image-Edit's recommended true guidance, with a blank negative prompt
KLEIN_STEPS = 4  # FLUX.2 [klein] 4B is distilled to 4 steps; more only cost time
KLEIN_MIN_SIDE = 64


def kontext_edit(image: np.ndarray, prompt: str, mask: np.ndarray | None, ctx: BrickContext) -> dict[str, np.ndarray]:
    def call(picture: Image.Image, height: int, width: int) -> dict[str, Any]:
        return {"image": picture, "max_area": height * width, "_auto_resize": False, "guidance_scale": KONTEXT_GUIDANCE}

    return _edit("flux_kontext", "FluxKontextPipeline", image, prompt, mask, ctx, call, what="kontext_edit")


def qwen_image_edit(
    image: np.ndarray, prompt: str, reference: np.ndarray | None, reference2: np.ndarray | None, mask: np.ndarray | None,
    ctx: BrickContext,
) -> dict[str, np.ndarray]:  # fmt: skip
    references = tuple(r for r in (reference, reference2) if r is not None)

    def call(picture: Image.Image, height: int, width: int) -> dict[str, Any]:
        return {"image": [picture, *map(_on_white, references)], "negative_prompt": " ", "true_cfg_scale": QWEN_TRUE_CFG}

    return _edit("qwen_image_edit", "QwenImageEditPlusPipeline", image, prompt, mask, ctx, call, what="qwen_image_edit")


def flux2_klein_edit(
    image: np.ndarray, prompt: str, reference: np.ndarray | None, mask: np.ndarray | None, ctx: BrickContext
) -> dict[str, np.ndarray]:
    references = () if reference is None else (reference,)

    def call(picture: Image.Image, height: int, width: int) -> dict[str, Any]:
        return {"image": [_at_least(picture), *(_at_least(_on_white(r)) for r in references)], "guidance_scale": 1.0}

    steps = min(ctx.models.config.runtime.steps, KLEIN_STEPS)
    return _edit("flux2_klein", "Flux2KleinPipeline", image, prompt, mask, ctx, call, what="flux2_klein_edit", steps=steps)


def _edit(
    key: str, class_name: str, image: np.ndarray, prompt: str, mask: np.ndarray | None, ctx: BrickContext, call: Any, *,
    what: str, steps: int | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One editor run: `call(picture, height, width)` gives the pipeline's image arguments."""
    if mask is not None:
        check_mask(mask, image, "the region that may change", optional=True)
    if not prompt.strip():
        raise InvalidInput("is empty: say what to change", param="prompt")
    h, w = image.shape[:2]
    height, width = fit(h, w)
    picture = Image.fromarray(resize(rgb(image), (height, width)))
    generated = denoise(key, class_name, ctx, what=what, steps=steps, prompt=prompt, height=height, width=width,
                        **call(picture, height, width))  # fmt: skip
    region = np.ones((h, w), bool) if mask is None else mask > 0
    return {"image": feathered_paste(image, resize(generated, (h, w)), region)}


def _on_white(reference: np.ndarray) -> Image.Image:
    """A reference image as the editors take it: RGB, a transparent background made white (a logo's)."""
    if reference.ndim == 3 and reference.shape[2] == 4:
        alpha = reference[..., 3:] / 255.0
        reference = np.rint(reference[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return Image.fromarray(rgb(reference) if reference.ndim == 3 else reference).convert("RGB")


def _at_least(picture: Image.Image) -> Image.Image:
    """`picture` scaled up by a whole factor until both sides are at least 64 px (klein's minimum)."""
    factor = math.ceil(KLEIN_MIN_SIDE / min(picture.size))
    return picture if factor <= 1 else picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.LANCZOS)
