"""What the diffusion bricks share: working sizes, the diptych, one denoising run, the loader.

- FLUX wants sides that are multiples of 16 (8x VAE, 2x2 latent packing); the bricks work at most
  1024 px on the long side and bring results back to the input size.
- The task LoRAs were trained with the ICEdit "diptych": the source on the left half, the right
  half masked and generated from "A diptych with two side-by-side images of the same scene. On
  the right, the scene is exactly the same as on the left but <instruction>", halves 768 px wide.
- Every run goes through the model manager (device queue, OOM retry), reports MCP progress per
  denoising step and stops at the step after a cancellation, dropping what that step held.
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
from .manager import ModelManager, _free

MULTIPLE = 16
MAX_SIDE = 1024
DIPTYCH_PROMPT = "A diptych with two side-by-side images of the same scene. {caption}On the right, the scene is exactly the same as on the left but {instruction}"
SEED = 0  # same inputs, same result
FEATHER_SIGMA = 1.5  # px, on the new side of a seam


def fit(height: int, width: int, *, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(height, width) scaled down to `max_side` on the long side, each a multiple of 16."""
    scale = min(1.0, max_side / max(height, width))
    return tuple(max(MULTIPLE, round(side * scale / MULTIPLE) * MULTIPLE) for side in (height, width))  # type: ignore[return-value]


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An image (Lanczos) or a binary mask (bilinear, re-thresholded) at (height, width)."""
    if array.shape[:2] == size:
        return array
    target = (size[1], size[0])
    if array.ndim == 2:
        smooth = np.asarray(Image.fromarray(array).resize(target, Image.Resampling.BILINEAR))
        return np.where(smooth > 127, 255, 0).astype(np.uint8)
    return np.asarray(Image.fromarray(array).resize(target, Image.Resampling.LANCZOS))


def grow(mask: np.ndarray, side_at_1024: int) -> np.ndarray:
    """Dilate by a square whose side is `side_at_1024` px for a 1024 px long side (upstream's kernels)."""
    side = max(3, round(side_at_1024 * max(mask.shape) / 1024))
    return cv2.dilate(mask, np.ones((side, side), np.uint8))


def paste_inside(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`original` with its colour channels replaced by `generated` where `mask` is set: outside stays exact."""
    out = original.copy()
    inside = mask > 0
    out[inside, :3] = generated[inside]
    return out


def check_mask(mask: np.ndarray, image: np.ndarray, what: str, *, optional: bool = False) -> None:
    """Refuse a mask of another size than the image, or an empty one (saying what to mark)."""
    if mask.shape[:2] != image.shape[:2]:
        (mh, mw), (h, w) = mask.shape[:2], image.shape[:2]
        raise InvalidInput(f"is {mw}x{mh} but `image` is {w}x{h}; they must match", param="mask")
    if not mask.any():
        raise InvalidInput(f"mask is empty: mark {what} with 255" + (", or leave the mask out" if optional else ""), param="mask")


def rgb(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., :3])


def diptych(
    adapter: str | None, image: np.ndarray, mask: np.ndarray | None, instruction: str, ctx: BrickContext, *,
    what: str, caption: str = "", left: np.ndarray | None = None, prompt: str | None = None,
) -> np.ndarray:  # fmt: skip
    """The ICEdit method: `left` (default: the image) beside the image, the right half generated
    where `mask` is set (default: all of it); returns the right half at the image's size."""
    h, w = image.shape[:2]
    half = ctx.models.config.runtime.diptych_width  # each half as wide as the task LoRAs were trained
    ph, pw = fit(h * half / w, half, max_side=max(half, MAX_SIDE))
    right = resize(rgb(image), (ph, pw))
    canvas = np.concatenate([resize(rgb(image if left is None else left), (ph, pw)), right], axis=1)
    masks = np.zeros((ph, 2 * pw), np.uint8)
    masks[:, pw:] = 255 if mask is None else resize(mask, (ph, pw))
    text = prompt if prompt is not None else DIPTYCH_PROMPT.format(caption=f"{caption.strip()} " if caption.strip() else "", instruction=instruction)
    out = generate(adapter, canvas, masks, text, ctx, what=what)
    return resize(out[:, pw:], (h, w))


def generate(
    adapter: str | None, image: np.ndarray, mask: np.ndarray, prompt: str, ctx: BrickContext, *,
    what: str, strength: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """One FLUX Fill run with LoRA `adapter` on an RGB `image` whose sides are multiples of 16;
    `strength` < 1 starts from `image` itself instead of noise. Returns RGB uint8, same size."""
    mgr = ctx.models
    steps = mgr.config.runtime.steps
    strength = min(1.0, max(strength, 1.0 / steps))  # at least one denoising step
    total = steps - int(max(steps - steps * strength, 0))  # what FluxFillPipeline.get_timesteps keeps
    h, w = image.shape[:2]

    def work() -> np.ndarray:

        if adapter is not None and _stores_fp8(mgr, mgr.device):
            base = mgr.load("flux_fill", flux_fill_loader(mgr))
            if adapter not in base.get_list_adapters().get("transformer", []):
                # PEFT gives new LoRA layers the dtype of the weights they wrap: load them beside compute-dtype
                # weights, which the casting hooks return to fp8 storage after their next forward
                base.transformer.to(mgr.dtype)
        pipe = mgr.flux_fill(adapter, flux_fill_loader(mgr))
        return run_pipeline(
            pipe, ctx, total=total, what=what, prompt=prompt, image=Image.fromarray(image),
            mask_image=Image.fromarray(mask), height=h, width=w, strength=strength, guidance_scale=mgr.config.runtime.guidance,
        )  # fmt: skip

    return mgr.run(work, what=what)


def step_callback(ctx: BrickContext, total: int, what: str) -> Callable[..., dict[str, Any]]:
    """A `callback_on_step_end` that reports each step and raises (aborting the loop) once cancelled."""

    def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        ctx.progress(step + 1, total, f"{what}: denoising step {step + 1} of {total}")
        ctx.check_cancelled()
        return {}

    return on_step


def denoise(key: str, class_name: str, ctx: BrickContext, *, what: str, steps: int | None = None, **call: Any) -> np.ndarray:
    """One run of the pipeline `key` (a diffusers class) on the device queue, with `steps` (default:
    the configured ones); RGB uint8 at the requested size."""
    mgr = ctx.models
    steps = steps or mgr.config.runtime.steps
    return mgr.run(
        lambda: run_pipeline(mgr.load(key, pipeline_loader(class_name, mgr)), ctx, total=steps, what=what, steps=steps, **call),
        what=what,
    )


def run_pipeline(pipe: Any, ctx: BrickContext, *, total: int, what: str, steps: int | None = None, **call: Any) -> np.ndarray:
    """Call a diffusers pipeline with `steps` (default: the configured ones) and the seed, per-step
    progress and cancellation."""
    import torch

    transformer = pipe.transformer
    if transformer.is_cache_enabled:  # first-block cache: fresh state per image, in a named context
        transformer._reset_stateful_cache()
    try:
        with transformer.cache_context(what) if transformer.is_cache_enabled else nullcontext():
            result = pipe(
                num_inference_steps=steps or ctx.models.config.runtime.steps, generator=torch.Generator("cpu").manual_seed(SEED),
                output_type="np", callback_on_step_end=step_callback(ctx, total, what), **call,
            ).images[0]  # fmt: skip
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled: the traceback's frames hold the step's tensors
            exc.with_traceback(None)
            _free()
        raise
    return np.clip(np.rint(result * 255), 0, 255).astype(np.uint8)


def feathered_paste(original: np.ndarray, generated: np.ndarray, region: np.ndarray) -> np.ndarray:
    """`original` with `generated` RGB inside `region`, feathered inward: outside `region` stays exact."""
    weight = np.where(region, cv2.GaussianBlur(region.astype(np.float32), (0, 0), FEATHER_SIGMA), 0)[..., None]
    old = original[..., :3].astype(np.float32)
    out = original.copy()
    out[..., :3] = np.where(region[..., None], np.rint(old + (generated[..., :3].astype(np.float32) - old) * weight), old).astype(np.uint8)
    return out


TEXT_COMPONENTS = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
SHARED_TEXT = ("FluxFillPipeline", "FluxControlPipeline", "FluxKontextPipeline")  # the FLUX.1 [dev] family: CLIP-L + T5-XXL
VL_PROCESSOR = {"QwenImageEditPlusPipeline": "Qwen2VLProcessor"}  # pipelines whose text encoder takes images


def pipeline_loader(class_name: str, mgr: ModelManager) -> Callable[[ModelEntry, Any, Any], Any]:
    """A loader of `mgr` for the diffusers pipeline `class_name`, with its configured speed options."""

    def load(entry: ModelEntry, device: Any, dtype: Any) -> Any:
        import diffusers

        kwargs: dict[str, Any] = {"subfolder": entry.subfolder} if entry.subfolder else {}
        if mgr.config.runtime.share_text_encoders and class_name in SHARED_TEXT:  # the first FLUX pipeline's, if one is loaded
            kwargs |= mgr.shared_components(TEXT_COMPONENTS)
        if class_name in VL_PROCESSOR:  # the stock processor needs torchvision (its video half); this one does not
            from .qwen import image_only_processor

            where = f"{entry.subfolder}/processor" if entry.subfolder else "processor"
            kwargs["processor"] = image_only_processor(VL_PROCESSOR[class_name]).from_pretrained(entry.id, subfolder=where)
        pipe = getattr(diffusers, class_name).from_pretrained(entry.id, dtype=dtype, **kwargs).to(device)
        pipe.set_progress_bar_config(disable=True)
        speed_up(mgr, pipe.transformer, device, dtype)
        return pipe

    return load


def flux_fill_loader(mgr: ModelManager) -> Callable[[ModelEntry, Any, Any], Any]:
    """The loader of the shared base of every FLUX Fill brick."""
    return pipeline_loader("FluxFillPipeline", mgr)


NO_BLOCK_CACHE = {"Flux2Transformer2DModel"}
"""Transformers diffusers' first-block cache fails on (0.42.1: FLUX.2's single blocks return one tensor, not two)."""


def speed_up(mgr: ModelManager, transformer: Any, device: Any, dtype: Any) -> None:
    """First-block cache and fp8 weight storage, when configured; never on the CPU, where neither pays."""
    runtime = mgr.config.runtime
    if device.type == "cpu":
        return
    if runtime.first_block_cache > 0 and type(transformer).__name__ not in NO_BLOCK_CACHE:
        from diffusers import FirstBlockCacheConfig

        transformer.enable_cache(FirstBlockCacheConfig(threshold=runtime.first_block_cache))
    if _stores_fp8(mgr, device):
        import torch

        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)



def _stores_fp8(mgr: ModelManager, device: Any) -> bool:
    return mgr.config.runtime.layerwise_fp8 and device.type != "cpu"
