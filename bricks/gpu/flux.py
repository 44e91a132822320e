"""The FLUX Fill bricks: fill, removal refine, and the diptych task LoRAs (RCM, ENV, POSE, STYLE).

All share one FLUX.1-Fill base held by the model manager; each task switches on its LoRA adapter
(`lora_removal`, `lora_rcm`, ...), loaded once. What each promises about the pixels it leaves alone:
- generative_fill, recolor_material, stylize with a mask: every pixel outside the mask is the input's.
- refine_removal: every pixel outside the grown mask (grown as the fast inpainting tool grows it).
- change_environment, change_pose, stylize without a mask: the whole image is redrawn.

A reference object for generative_fill (a `preimage` with transparency) is shown to the model
the way upstream Lego-Edit does: as the left half of a diptych, scaled into the mask's box on
white, while the right half is filled; an opaque `preimage` is instead the starting point of
the masked area (a composition guide, e.g. the original image when outpainting).
"""

from __future__ import annotations

import numpy as np

from ..context import BrickContext
from ..cpu.inpaint import DILATE
from ..errors import InvalidInput
from .diffusion import check_mask, diptych, fit, generate, grow, paste_inside, resize, rgb

RCM_GROW = 35  # upstream lets the material LoRA repaint a little around the object (px at 1024)
GUIDE_STRENGTH = 0.95  # an opaque preimage only guides: most of the noise schedule still runs


def generative_fill(
    image: np.ndarray, mask: np.ndarray, prompt: str, preimage: np.ndarray | None, ctx: BrickContext
) -> dict[str, np.ndarray]:
    check_mask(mask, image, "the area to generate")
    if preimage is not None and preimage.shape[2] == 4 and preimage[..., 3].min() < 255:
        left = _place_reference(preimage, mask)
        out = diptych(None, image, mask, "", ctx, what="generative_fill", left=left, prompt=prompt)
        return {"image": paste_inside(image, out, mask)}
    start, strength = rgb(image), 1.0
    if preimage is not None:
        start, strength = paste_inside(start, resize(rgb(preimage), image.shape[:2]), mask), GUIDE_STRENGTH
    return {"image": _fill(None, image, start, mask, prompt, ctx, "generative_fill", strength)}


def refine_removal(
    image: np.ndarray, mask: np.ndarray, preimage: np.ndarray, score: float, ctx: BrickContext
) -> dict[str, np.ndarray]:
    check_mask(mask, image, "the object to remove")
    if preimage.shape[:2] != image.shape[:2]:
        raise InvalidInput("must be the fast inpainting result of this image (same size)", param="preimage")
    grown = grow(mask, DILATE)
    start = paste_inside(rgb(image), rgb(preimage), grown)
    return {"image": _fill("lora_removal", image, start, grown, "", ctx, "refine_removal", score)}


def change_environment(image: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    out = diptych("lora_env", image, None, prompt, ctx, what="change_environment")
    return {"image": _keep_alpha(image, out)}


def change_pose(image: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    out = diptych("lora_pose", image, None, prompt, ctx, what="change_pose")
    return {"image": _keep_alpha(image, out)}


def recolor_material(image: np.ndarray, mask: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    check_mask(mask, image, "the object to change")
    out = diptych("lora_rcm", image, grow(mask, RCM_GROW), prompt, ctx, what="recolor_material")
    return {"image": paste_inside(image, out, mask)}


def stylize(
    image: np.ndarray, mask: np.ndarray | None, prompt: str, style: str, ctx: BrickContext
) -> dict[str, np.ndarray]:
    if mask is not None:
        check_mask(mask, image, "the part to restyle")
    style = style.strip()
    instruction = f"Convert the image into {style if 'style' in style.lower() else style + ' style'}."
    out = diptych("lora_style", image, mask, instruction, ctx, what="stylize", caption=prompt)
    return {"image": _keep_alpha(image, out) if mask is None else paste_inside(image, out, mask)}


def _fill(
    adapter: str | None, image: np.ndarray, start: np.ndarray, mask: np.ndarray, prompt: str, ctx: BrickContext,
    what: str, strength: float,
) -> np.ndarray:  # fmt: skip
    """FLUX Fill of `start` (the image, or the image with a guide inside the mask) at a working size;
    the result inside `mask`, the input's own pixels outside."""
    size = fit(*image.shape[:2])
    out = generate(adapter, resize(start, size), resize(mask, size), prompt, ctx, what=what, strength=strength)
    return paste_inside(image, resize(out, image.shape[:2]), mask)


def _place_reference(reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference's opaque part scaled into the mask's bounding box (bottom-centred) on white."""
    ys, xs = np.nonzero(reference[..., 3])
    if ys.size == 0:
        raise InvalidInput("is fully transparent: a reference object needs opaque pixels", param="preimage")
    obj = reference[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    my, mx = np.nonzero(mask)
    box_h, box_w = my.max() - my.min() + 1, mx.max() - mx.min() + 1
    scale = min(box_h / obj.shape[0], box_w / obj.shape[1])
    obj = resize(obj, (max(1, round(obj.shape[0] * scale)), max(1, round(obj.shape[1] * scale))))
    top, left = my.max() + 1 - obj.shape[0], mx.min() + (box_w - obj.shape[1]) // 2
    canvas = np.full((*mask.shape, 3), 255.0)
    alpha = obj[..., 3:] / 255.0
    region = canvas[top : top + obj.shape[0], left : left + obj.shape[1]]
    region[:] = obj[..., :3] * alpha + region * (1 - alpha)
    return canvas.round().astype(np.uint8)


def _keep_alpha(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.dstack([out, image[..., 3]]) if image.shape[2] == 4 else out
