"""FLUX-CBG on the GPU: a new background painted by FLUX.1 Canny around the subject's edges.

The Canny checkpoint generates a whole image from a prompt and an edge map. Giving it only the
subject's edges (its outline and the lines inside it) lets it paint the described scene around a
subject-shaped hole that lines up with the real one; the original subject is then pasted back
exactly, with a slight feather on the background side of the seam only.

`denoise` and `feathered_paste` also serve KONTEXT-EDIT (bricks/gpu/kontext.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..context import BrickContext
from ..errors import InvalidInput
from .config import ModelEntry
from .diffusion import SEED, fit, resize, rgb, speed_up, step_callback
from .manager import _free, manager

CANNY_LOW, CANNY_HIGH = 50, 200  # the thresholds of the FLUX.1-Canny-dev model card's example
FEATHER_SIGMA = 1.5  # px, on the new side of a seam


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
        "flux_canny", pipeline_loader("FluxControlPipeline"), ctx, what="change_background",
        prompt=prompt, control_image=Image.fromarray(edges), height=size[0], width=size[1],
        guidance_scale=manager().config.runtime.guidance,
    )  # fmt: skip
    return {"image": feathered_paste(image, resize(generated, (h, w)), background)}


def subject_edges(image: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """White-on-black RGB edge map of the subject only: Canny edges inside it plus its outline."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    inside = cv2.dilate(subject.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # edges on the seam count
    outline = cv2.morphologyEx(subject.astype(np.uint8) * 255, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edges = ((cv2.Canny(grey, CANNY_LOW, CANNY_HIGH) > 0) & inside) | outline
    return np.repeat((edges.astype(np.uint8) * 255)[..., None], 3, axis=2)


def feathered_paste(original: np.ndarray, generated: np.ndarray, region: np.ndarray) -> np.ndarray:
    """`original` with `generated` RGB inside `region`, feathered inward: outside `region` stays exact."""
    weight = np.where(region, cv2.GaussianBlur(region.astype(np.float32), (0, 0), FEATHER_SIGMA), 0)[..., None]
    old = original[..., :3].astype(np.float32)
    out = original.copy()
    out[..., :3] = np.where(region[..., None], np.rint(old + (generated[..., :3].astype(np.float32) - old) * weight), old).astype(np.uint8)
    return out


def denoise(key: str, loader: Callable[[ModelEntry, Any, Any], Any], ctx: BrickContext, *, what: str, **call: Any) -> np.ndarray:
    """One run of the pipeline `key` on the device queue, with the configured steps, per-step
    progress and cancellation at the next step; returns RGB uint8 at the requested size."""
    mgr = manager()
    steps = mgr.config.runtime.steps

    def work() -> np.ndarray:
        import torch

        pipe = mgr.load(key, loader)
        transformer = pipe.transformer
        if transformer.is_cache_enabled:  # first-block cache: fresh state per image
            transformer._reset_stateful_cache()
        try:
            with transformer.cache_context(what) if transformer.is_cache_enabled else nullcontext():
                result = pipe(
                    num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(SEED), output_type="np",
                    callback_on_step_end=step_callback(ctx, steps, what), **call,
                ).images[0]  # fmt: skip
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled: drop the frames holding the step's tensors
                exc.with_traceback(None)
                _free()
            raise
        return np.clip(np.rint(result * 255), 0, 255).astype(np.uint8)

    return mgr.run(work, what=what)


def pipeline_loader(class_name: str) -> Callable[[ModelEntry, Any, Any], Any]:
    """A manager loader for the diffusers pipeline `class_name`, with the configured speed options."""

    def load(entry: ModelEntry, device: Any, dtype: Any) -> Any:
        import diffusers

        kwargs = {"subfolder": entry.subfolder} if entry.subfolder else {}
        pipe = getattr(diffusers, class_name).from_pretrained(entry.id, dtype=dtype, **kwargs).to(device)
        pipe.set_progress_bar_config(disable=True)
        speed_up(pipe.transformer, device, dtype)
        return pipe

    return load
