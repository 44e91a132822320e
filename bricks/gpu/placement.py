"""ADD-PRED: where to add an object, asked of the Builder MLLM as a grounding question.

Qwen2.5-VL answers boxes as `[x1, y1, x2, y2]` in pixels of the image it was shown. The answer
is decoded under a grammar that admits exactly that shape, mapped back to the input's pixels,
ordered, clamped to the image and to the given mask's box, and returned as a box mask.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import BrickFailed, InvalidInput
from ..context import BrickContext
from .mllm import ask

BOX_GRAMMAR = 'start: "[" N ", " N ", " N ", " N "]"\nN: /0|[1-9][0-9]{0,3}/\n'
BOX_TOKENS = 32  # the longest box, "[9999, 9999, 9999, 9999]", is 24 bytes
MIN_SHARE = 0.05  # a degenerate box is widened to this share of the region's side


def predict_placement(image: np.ndarray, prompt: str, mask: np.ndarray | None, ctx: BrickContext) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    region = (0, 0, w, h) if mask is None else _bbox(mask)
    what = prompt.strip()
    if not what:
        raise InvalidInput("is empty: describe the object to add", param="prompt")

    def question(seen_h: int, seen_w: int) -> str:
        text = f"Where should this be added to the image: {what}? Answer with its bounding box [x1, y1, x2, y2]."
        if mask is None:
            return text
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(region, (seen_w / w, seen_h / h) * 2, strict=True))
        return f"{text} The box must lie inside [{x0}, {y0}, {x1}, {y1}]."

    text, (seen_h, seen_w) = ask(ctx.models, image, question, max_new_tokens=BOX_TOKENS, grammar=BOX_GRAMMAR, what="predict_placement")
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if len(numbers) != 4:
        raise BrickFailed("predict_placement", f"the model's answer {text!r} is not a box")
    sx, sy = w / seen_w, h / seen_h
    box = (numbers[0] * sx, numbers[1] * sy, numbers[2] * sx, numbers[3] * sy)
    x0, y0, x1, y1 = _fit(box, region)
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = True
    return {"mask": out}


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("mask is empty: mark where the object may go with 255, or omit it", param="mask")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _fit(box: tuple[float, ...], region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The box ordered, in whole pixels, inside the region, and at least `MIN_SHARE` of its sides."""
    left, top, right, bottom = region
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    xs = _span(round(x0), round(x1), left, right)
    ys = _span(round(y0), round(y1), top, bottom)
    return xs[0], ys[0], xs[1], ys[1]


def _span(a: int, b: int, low: int, high: int) -> tuple[int, int]:
    a, b = min(max(a, low), high), min(max(b, low), high)
    least = max(1, round(MIN_SHARE * (high - low)))
    if b - a < least:
        centre = (a + b) / 2
        a = min(max(low, round(centre - least / 2)), high - least)
        b = a + least
    return a, b
