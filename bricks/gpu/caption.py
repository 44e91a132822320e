"""CMI-PRED with a caption: the Builder MLLM describes the image; the canvas and mask for
outpainting are the CPU backend's (`bricks.cpu.geometry`), which also checks the ratios first."""

from __future__ import annotations

import numpy as np

from ..cpu import geometry
from ..context import BrickContext
from .mllm import ask
from .qwen import THINK_CLOSE

QUESTION = "Describe this image in English in one or two sentences, as a prompt for an image generator."
CAPTION_TOKENS = 77  # a diffusion text encoder's window (CLIP's) is about this long


def caption_and_canvas(
    image: np.ndarray,
    left_ratio: float | None,
    right_ratio: float | None,
    top_ratio: float | None,
    bottom_ratio: float | None,
    ctx: BrickContext,
) -> dict[str, object]:
    out = geometry.caption_and_canvas(image, left_ratio, right_ratio, top_ratio, bottom_ratio)
    text, _ = ask(ctx.models, image, QUESTION, max_new_tokens=CAPTION_TOKENS, what="caption_and_canvas")
    # a reasoning Builder may think first; the caption is what follows, on one line
    out["caption"] = " ".join(text.rpartition(THINK_CLOSE)[2].split())
    return out
