"""The Builder MLLM (Qwen2.5-VL family) as a predictor: one question about an image, one answer.

ADD-PRED and CMI-PRED ask it for a box and a caption. The model, its torchvision-free processor
and its llguidance tokenizer are loaded by `qwen.load`, once, under the manager's `builder` key,
and shared with the transformers planner. An answer may be held to a Lark grammar: tokens the
grammar cannot take next are masked out at every step, so the text always parses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..errors import BrickFailed
from . import qwen
from .config import ModelEntry
from .manager import ModelManager
from .qwen import Qwen

IMAGE_SIDE = 448  # long side the image is brought to, as the planner does


def ask(
    models: ModelManager, image: np.ndarray, question: str | Callable[[int, int], str], *, max_new_tokens: int,
    grammar: str | None = None, what: str, more: Sequence[np.ndarray] = (), check_cancelled: Callable[[], None] | None = None,
) -> tuple[str, tuple[int, int]]:  # fmt: skip
    """The Builder's answer about `image` (and the images `more`, shown after it), and the
    (height, width) of `image` as the model saw it: Qwen2.5-VL grounds boxes in those pixels, so
    `question` may be a function of them. Greedy; with `grammar` (Lark), the answer follows it.
    `check_cancelled` is called before each token (it raises to stop)."""
    import torch
    from transformers import LogitsProcessorList

    loaded: Qwen = models.load("builder", load_builder)[1]
    pils = [_seen(picture) for picture in (image, *more)]
    _, grid_h, grid_w = (int(n) for n in loaded.processor.image_processor(images=pils[:1], return_tensors="pt")["image_grid_thw"][0])
    patch = loaded.processor.image_processor.patch_size
    seen = (grid_h * patch, grid_w * patch)
    text = question(*seen) if callable(question) else question
    messages = [{"role": "user", "content": [*({"type": "image"} for _ in pils), {"type": "text", "text": text}]}]
    prompt = loaded.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = loaded.processor(text=[prompt], images=pils, return_tensors="pt")
    inputs = {k: v.to(loaded.device) for k, v in batch.items()}
    constraint = [_Constrained(loaded.lark_matcher(grammar), loaded.lltok.vocab_size, what)] if grammar else []
    if check_cancelled is not None:
        constraint.insert(0, _Cancellable(check_cancelled))

    def generate() -> Any:
        with torch.inference_mode():
            return loaded.model.generate(
                **inputs,
                logits_processor=LogitsProcessorList(constraint),
                max_new_tokens=max_new_tokens,
                eos_token_id=loaded.eos,
                pad_token_id=loaded.tokenizer.pad_token_id or loaded.eos[0],
                do_sample=False, temperature=None, top_p=None, top_k=None,
            )  # fmt: skip

    out = models.run(generate, what=what)
    return loaded.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=True), seen


def _seen(image: np.ndarray) -> Image.Image:
    """The image as the model is shown it: RGB, at most IMAGE_SIDE on the long side."""
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]) if image.ndim == 3 else image).convert("RGB")
    scale = IMAGE_SIDE / max(pil.size)
    if scale < 1:
        pil = pil.resize((max(28, round(pil.width * scale)), max(28, round(pil.height * scale))), Image.BICUBIC)
    return pil


def load_builder(entry: ModelEntry, device: Any, dtype: Any) -> tuple[Any, Qwen]:
    """(the model, for the manager's memory accounting; everything its users need)."""
    try:
        loaded = qwen.load(entry.id, entry.subfolder, device, dtype)
    except qwen.QwenUnavailable as exc:
        raise BrickFailed("builder", str(exc)) from None
    return loaded.model, loaded


class _Cancellable:
    """A logits processor that leaves the scores alone and stops the generation once cancelled."""

    def __init__(self, check: Callable[[], None]):
        self.check = check

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.check()
        return scores


class _Constrained:
    """A logits processor holding one generation to an llguidance matcher's grammar."""

    def __init__(self, matcher: Any, vocab_size: int, what: str):
        self.matcher = matcher
        self.what = what
        self.started = False
        self.bitmask = qwen.grammar_bitmask(vocab_size)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.started and not self.matcher.consume_token(int(input_ids[0, -1])):
            raise BrickFailed(self.what, f"the model left its answer's grammar: {self.matcher.get_error()}")
        self.started = True
        return qwen.allowed_only(self.matcher, self.bitmask, scores)
