"""Segmentation on `transformers` models: RES, SOS and MASK-SEG.

- RES: Grounding DINO finds the box the phrase names, SAM cuts the object out of that box
  (the Grounded-SAM recipe); with `res_model = "clipseg"`, CLIPSeg's text-conditioned heat map
  instead, lighter and blurrier.
- SOS: a SAM-family model (SAM or SAM-HQ, the `salient` entry) prompted with a grid of points
  over the middle of the picture; every candidate mask is scored by SAM's own quality estimate,
  its size and how little of the image border it touches (a subject rarely fills the frame's
  edge; the background does), and the best one wins. No remote code, unlike RMBG or BiRefNet.
- MASK-SEG: the same model prompted with the rough mask's box; of its candidate masks the one
  agreeing best with the rough mask wins, and nothing outside the box is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..context import BrickContext
from ..errors import BrickFailed, InvalidInput
from ..images import binary
from .config import ModelEntry
from .manager import ModelManager

BOX_THRESHOLD = 0.3  # Grounding DINO: lowest confidence of the phrase's box (its usual setting)
CLIPSEG_THRESHOLD = 0.4  # CLIPSeg: lowest probability of an object pixel
GRID = (0.3, 0.5, 0.7)  # SOS point prompts, as shares of the width and height
SCORE_SIDE = 256  # SOS scores its candidates on masks this long on the long side
MIN_AREA, MAX_AREA = 0.005, 0.95  # SOS candidates outside these shares of the image are not objects
MIN_SIDE = 16


def segment_by_text(image: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    phrase = prompt.strip()
    if not phrase:
        raise InvalidInput("is empty: name the object to segment", param="prompt")
    mgr = ctx.models
    res_model = mgr.config.runtime.res_model
    if res_model == "clipseg":
        mask = _clipseg(mgr, image, phrase)
    elif res_model == "grounded_sam":
        box = _ground(mgr, image, phrase)
        ctx.progress(1, 2, "object found; segmenting it")
        ctx.check_cancelled()
        mask = _sam_box(mgr, image, box)
        ctx.progress(2, 2, "segmented")
    else:
        raise BrickFailed("segment_by_text", f"unknown res_model {res_model!r}: use 'grounded_sam' or 'clipseg'")
    if not mask.any():
        raise InvalidInput(f"nothing matching {phrase!r} was found in the image", param="prompt")
    return {"mask": binary(mask), "image": _preview(image, mask)}


def segment_salient(image: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InvalidInput(f"image is smaller than {MIN_SIDE} px on a side; too small to segment", param="image")
    points = [[x * w, y * h] for y in GRID for x in GRID]
    processor, batch, pred = _sam_batch(ctx.models, image, "salient", input_points=[[[p] for p in points]])
    scale = SCORE_SIDE / max(h, w)
    small = _masks(processor, batch, pred.pred_masks, (max(1, round(h * scale)), max(1, round(w * scale))))
    quality = pred.iou_scores[0].float().cpu().numpy()
    scores = np.array([[_salience(m, q) for m, q in zip(ms, qs, strict=True)] for ms, qs in zip(small, quality, strict=True)])
    point, candidate = np.unravel_index(int(scores.argmax()), scores.shape)
    if scores[point, candidate] <= 0:
        raise InvalidInput("no salient object stands out from the background; try text-grounded segmentation", param="image")
    ctx.progress(1, 1, "salient object chosen")
    mask = _masks(processor, batch, pred.pred_masks[:, point : point + 1, candidate : candidate + 1], (h, w))[0, 0]
    return {"mask": binary(mask), "image": _preview(image, mask)}


def refine_mask(image: np.ndarray, mask: np.ndarray, ctx: BrickContext) -> dict[str, np.ndarray]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("mask is empty: paint roughly over the object to segment", param="mask")
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    processor, batch, pred = _sam_batch(ctx.models, image, "salient", input_boxes=[[[left, top, right, bottom]]])
    candidates = _masks(processor, batch, pred.pred_masks, mask.shape)[0]
    rough = mask[top:bottom, left:right] > 0
    agreement = [_iou(c[top:bottom, left:right], rough) for c in candidates]
    out = np.zeros(mask.shape, bool)
    out[top:bottom, left:right] = candidates[int(np.argmax(agreement))][top:bottom, left:right]
    if not out.any():
        raise InvalidInput("no object could be separated inside the mask's box", param="mask")
    ctx.progress(1, 1, "mask refined")
    return {"mask": binary(out), "image": _preview(image, out)}


# -- models ------------------------------------------------------------------------
def _pretrained(model_class: str) -> Any:
    """A manager loader giving (model, processor) for a `transformers` auto class."""

    def load(entry: ModelEntry, device: Any, dtype: Any) -> tuple[Any, Any]:
        import transformers

        kw = {"subfolder": entry.subfolder} if entry.subfolder else {}
        model = getattr(transformers, model_class).from_pretrained(entry.id, dtype=dtype, **kw)
        return model.to(device).eval(), transformers.AutoProcessor.from_pretrained(entry.id, **kw)

    return load


def _on(model: Any, batch: Any) -> dict[str, Any]:
    """The processor's tensors on the model's device, the pixels in its dtype (prompt coordinates stay float32)."""
    return {k: v.to(model.device, model.dtype) if k == "pixel_values" else v.to(model.device) for k, v in batch.items()}


def _ground(mgr: ModelManager, image: np.ndarray, phrase: str) -> tuple[float, float, float, float]:
    """Grounding DINO's most confident box for the phrase, in pixels."""
    import torch

    model, processor = mgr.load("grounding", _pretrained("AutoModelForZeroShotObjectDetection"))
    text = phrase.lower().rstrip(".") + "."  # Grounding DINO reads lower-case phrases ended by a dot
    batch = processor(images=_pil(image), text=text, return_tensors="pt")

    def detect() -> Any:
        with torch.inference_mode():
            return model(**_on(model, batch))

    outputs = mgr.run(detect, what="segment_by_text")
    found = processor.post_process_grounded_object_detection(
        outputs, batch["input_ids"], threshold=BOX_THRESHOLD, text_threshold=0.0, target_sizes=[image.shape[:2]]
    )[0]
    if len(found["scores"]) == 0:
        raise InvalidInput(f"nothing matching {phrase!r} was found in the image", param="prompt")
    x0, y0, x1, y1 = found["boxes"][int(found["scores"].argmax())].float().tolist()
    h, w = image.shape[:2]
    return max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)


def _clipseg(mgr: ModelManager, image: np.ndarray, phrase: str) -> np.ndarray:
    import torch

    model, processor = mgr.load("clipseg", _pretrained("CLIPSegForImageSegmentation"))
    batch = processor(text=[phrase], images=[_pil(image)], padding=True, return_tensors="pt")

    def heat() -> Any:
        with torch.inference_mode():
            return model(**_on(model, batch)).logits.float().sigmoid().reshape(batch["pixel_values"].shape[-2:])

    prob = mgr.run(heat, what="segment_by_text").cpu().numpy()
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(prob).resize((w, h), Image.BILINEAR)) > CLIPSEG_THRESHOLD


def _sam_batch(mgr: ModelManager, image: np.ndarray, key: str, **prompts: Any) -> tuple[Any, Any, Any]:
    """(processor, its inputs, the outputs) of a SAM-family model on one image and its prompts,
    three candidate masks per prompt."""
    import torch

    model, processor = mgr.load(key, _pretrained("AutoModel"))
    batch = processor(images=_pil(image), return_tensors="pt", **prompts)

    def predict() -> Any:
        with torch.inference_mode():
            return model(**_on(model, batch), multimask_output=True)

    return processor, batch, mgr.run(predict, what=key)


def _masks(processor: Any, batch: Any, logits: Any, size: tuple[int, int]) -> np.ndarray:
    """Low-resolution mask logits [1, prompts, candidates, h, w] -> bool masks [prompts, candidates, *size]."""
    return processor.post_process_masks(logits.float().cpu(), [size], batch["reshaped_input_sizes"])[0].numpy()


def _sam_box(mgr: ModelManager, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """SAM's best-rated mask for a box."""
    processor, batch, pred = _sam_batch(mgr, image, "sam", input_boxes=[[list(box)]])
    best = int(pred.iou_scores[0, 0].float().argmax())
    return _masks(processor, batch, pred.pred_masks[:, :, best : best + 1], image.shape[:2])[0, 0]


def _salience(mask: np.ndarray, quality: float) -> float:
    """How likely a candidate is the main subject: well formed, sizeable, off the frame's edge."""
    area = mask.mean()
    if not MIN_AREA <= area <= MAX_AREA:
        return 0.0
    edge = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]]).mean()
    return max(quality, 0.0) * (1 - edge) ** 2 * float(np.sqrt(area))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(image[..., :3]))


def _preview(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask as its alpha channel: the cut-out object."""
    return np.dstack([image[..., :3], binary(mask)])
