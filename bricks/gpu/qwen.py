"""The Builder model (Qwen2.5-VL family) as both its users load it: the planner that writes
workflows and the bricks that ask it about an image (ADD-PRED, CMI-PRED).

One loader, one processor, one set of special tokens and one way to hold generation to an
llguidance grammar. torch, transformers and llguidance are imported on first use only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LegoEditError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class QwenUnavailable(LegoEditError):
    """The model cannot be loaded here (missing packages or files, a bad checkpoint)."""


def resolve_device(device: str, dtype: str) -> tuple[Any, Any]:
    """The torch device and dtype for the settings' names; 'auto' is cuda, then mps, then cpu, in
    bfloat16 on cuda, float16 on mps and float32 on the cpu."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    where = torch.device(device)
    if dtype == "auto":
        return where, {"cuda": torch.bfloat16, "mps": torch.float16}.get(where.type, torch.float32)
    return where, getattr(torch, dtype)


@functools.cache
def image_only_processor(base: str = "Qwen2_5_VLProcessor") -> type:
    """A Qwen-VL processor class (`base`, from transformers) without its video half: the stock
    ones need torchvision to load. Qwen-Image-Edit's text encoder uses `Qwen2VLProcessor`."""
    import transformers
    from transformers.processing_utils import ProcessorMixin

    class ImageOnly(getattr(transformers, base)):  # type: ignore[misc]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **_: Any):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"ImageOnly{base}"
    return ImageOnly


@dataclass
class Qwen:
    model: Any
    processor: Any
    tokenizer: Any
    lltok: Any
    """The llguidance tokenizer grammars are compiled for."""
    device: Any
    eos: list[int]
    close_ids: list[int]
    """The tokens of THINK_CLOSE."""
    think_banned: Any
    """bool tensor [1, vocab]: no end of text, no special token, nothing after a '>'."""

    def lark_matcher(self, grammar: str) -> Any:
        """A fresh llguidance matcher holding an answer to the Lark `grammar`."""
        import llguidance

        matcher = llguidance.LLMatcher(self.lltok, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        if matcher.is_error():
            raise ValueError(f"bad grammar: {matcher.get_error()}")
        return matcher


def load(model: str, subfolder: str | None, device: Any, dtype: Any) -> Qwen:
    """The model, its processor and its grammar tokenizer; `QwenUnavailable` says why not."""
    where = f"'{model}'" + (f" (subfolder '{subfolder}')" if subfolder else "")
    try:
        import llguidance.hf
        from transformers import AutoModelForImageTextToText, AutoProcessor
    except ImportError as exc:
        raise QwenUnavailable(f"the Builder model needs torch, transformers and llguidance: {exc}") from None
    kw = {"subfolder": subfolder} if subfolder else {}
    try:
        net = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype, **kw).to(device).eval()
    except (OSError, ValueError) as exc:
        raise QwenUnavailable(f"cannot load the Builder model {where}: {exc}") from None
    try:
        processor = image_only_processor().from_pretrained(model, **kw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # another family's: the stock one may do (with torchvision)
        try:
            processor = AutoProcessor.from_pretrained(model, **kw)
        except (OSError, ValueError, ImportError) as exc:
            raise QwenUnavailable(f"cannot load the processor of {where}: {exc}") from None
    tokenizer = processor.tokenizer
    vocab = net.get_output_embeddings().out_features
    eos = [tokenizer.eos_token_id]
    extra = net.generation_config.eos_token_id
    eos += [i for i in ([extra] if isinstance(extra, int) else extra or []) if i not in eos]
    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=eos)
    close_ids = tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
    banned = _think_banned(lltok, len(tokenizer), vocab, eos).to(device)
    return Qwen(net, processor, tokenizer, lltok, device, eos, close_ids, banned)


def grammar_bitmask(vocab_size: int) -> Any:
    """The int32 CPU tensor an llguidance matcher writes allowed tokens into, one bit each."""
    import torch

    return torch.full((1, (vocab_size + 31) // 32), -1, dtype=torch.int32)


def allowed_only(matcher: Any, bitmask: Any, scores: Any) -> Any:
    """`scores` with every token `matcher` does not allow next set to -inf.

    (Not through `llguidance.torch`: importing it runs `torch.compile`.)
    """
    import torch

    matcher.unsafe_compute_mask_ptr(bitmask.data_ptr(), bitmask.numel() * bitmask.element_size())
    bits = np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[: scores.shape[1]]
    allowed = np.zeros(scores.shape[1], bool)
    allowed[: bits.size] = bits == 1
    return scores.masked_fill(torch.from_numpy(~allowed).to(scores.device)[None], float("-inf"))


def _think_banned(lltok: Any, size: int, vocab: int, eos: list[int]) -> Any:
    """Tokens reasoning may not use: the end of text, special tokens, the padding beyond the
    tokenizer, and any token with text after a '>' (so '</think>' always ends a token and the
    workflow starts on a fresh one)."""
    import torch

    after_close = re.compile(rb">\s*\S")
    flags = [i in eos or lltok.is_special_token(i) or bool(after_close.search(lltok.decode_bytes([i]))) for i in range(size)]
    return torch.tensor([flags + [True] * (vocab - size)])
