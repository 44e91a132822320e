"""The `transformers` planner: a local Qwen2.5-VL-family Builder with constrained decoding.

The model (by default the released Lego-Edit Builder) is loaded on the first plan. It sees the
image and the prompt, reasons freely inside `<think>…</think>` (bounded; the block is closed
for it when the budget runs out), then writes the workflow under the step-by-step grammars of
`builder.grammar`, so every plan parses, names only the bricks at hand with their real inputs,
and cites only earlier outputs of a fitting type. torch, transformers and llguidance are
imported on first use only.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
import anyio.to_thread
import numpy as np

from ..grammar import (
    GrammarCompiler,
    GrammarError,
    GrammarLimits,
    StepwiseMatcher,
    WorkflowGrammar,
)
from .base import PlannerUnavailable, PlanRequest, PlanText, feedback_text

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class MLLMConfig:
    model: str = "xiaomi-research/lego-edit"
    """A Hub repository id or a local directory."""
    subfolder: str | None = "Builder"
    device: str = "auto"
    """'auto' (cuda when available, else cpu), or a torch device such as 'cuda:1'."""
    dtype: str = "auto"
    """'auto' (bfloat16 on cuda, float32 on cpu), or a torch dtype name."""
    max_think_tokens: int = 512
    temperature: float = 0.0
    """0 decodes greedily, as upstream does."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed of the first plan; plan n uses seed + n, so re-plans differ but runs repeat."""
    image_side: int = 448
    """Long side the image is resized to, as upstream does."""
    limits: GrammarLimits = field(default_factory=GrammarLimits)


@functools.cache
def image_only_processor() -> type:
    """Qwen2.5-VL's processor without its video half: the stock one needs torchvision."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **_: Any):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    return ImageOnlyQwen2_5_VLProcessor


@dataclass
class _Loaded:
    model: Any
    processor: Any
    tokenizer: Any
    compiler: GrammarCompiler
    device: Any
    eos: list[int]
    close_ids: list[int]
    think_banned: Any  # bool tensor [1, vocab]: no end of text, no special token, nothing after a '>'


class MLLMPlanner:
    """`MLLMPlanner("xiaomi-research/lego-edit", subfolder="Builder", temperature=0.7, ...)`:
    the model, then any other `MLLMConfig` field by name."""

    name = "transformers"

    def __init__(self, model: str = MLLMConfig.model, *, loader: Callable[[], _Loaded] | None = None, **options: Any):
        """`loader`, when given, supplies the loaded model (the server shares the GPU bricks' Builder)."""
        self.config = MLLMConfig(model=model, **options)
        self._loader = loader
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._plans = 0

    async def plan(self, request: PlanRequest) -> PlanText:
        """Plan in a worker thread; a cancelled caller stops the generation at the next token."""
        return await anyio.to_thread.run_sync(self.plan_sync, request, anyio.from_thread.check_cancelled)

    def plan_sync(self, request: PlanRequest, check_cancelled: Callable[[], None] = lambda: None) -> PlanText:
        try:
            grammar = WorkflowGrammar(request.bricks, request.inits, request.instruction, self.config.limits)
            grammar.element([])
        except GrammarError as exc:
            raise PlannerUnavailable(f"the transformers planner cannot plan with these bricks and inputs: {exc}") from None
        with self._lock:
            loaded = self.load()
            import torch
            from transformers import LogitsProcessorList

            seed = None if self.config.seed is None else self.config.seed + self._plans
            self._plans += 1
            inputs = self._inputs(loaded, request)
            decoder = _Decoder(loaded, grammar, self.config.max_think_tokens, check_cancelled)
            if seed is not None:
                torch.manual_seed(seed)
            started = time.perf_counter()
            out = loaded.model.generate(
                **inputs,
                logits_processor=LogitsProcessorList([decoder]),
                max_new_tokens=self.config.max_think_tokens + len(loaded.close_ids) + grammar.max_bytes() + 1,
                eos_token_id=loaded.eos,
                pad_token_id=loaded.eos[0] if loaded.tokenizer.pad_token_id is None else loaded.tokenizer.pad_token_id,
                **self._sampling(),
            )
            seconds = time.perf_counter() - started
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        text = loaded.tokenizer.decode(new, skip_special_tokens=True)
        reasoning, _, workflow = text.partition(THINK_CLOSE)
        return PlanText(
            reasoning.strip(),
            workflow.strip(),
            {
                "model": self.config.model if not self.config.subfolder else f"{self.config.model}/{self.config.subfolder}",
                "device": str(loaded.device),
                "prompt_tokens": int(inputs["input_ids"].shape[1]),
                "think_tokens": len(decoder.think),
                "think_cut": decoder.cut,
                "workflow_tokens": decoder.json_tokens,
                "tokens": len(new),
                "steps": len(decoder.matcher.steps) if decoder.matcher else 0,
                "complete": bool(decoder.matcher and decoder.matcher.done),
                "seconds": round(seconds, 3),
                "mask_seconds": round(decoder.mask_seconds, 3),
                "seed": seed,
            },
        )

    def load(self) -> _Loaded:
        """Load the model, processor and grammar tokenizer once; a missing model is `PlannerUnavailable`."""
        if self._loader is not None:
            return self._loader()  # its owner caches (and may evict) it
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> _Loaded:
        cfg = self.config
        where = f"'{cfg.model}'" + (f" (subfolder '{cfg.subfolder}')" if cfg.subfolder else "")
        try:
            import llguidance.hf
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:
            raise PlannerUnavailable(f"the transformers planner needs torch, transformers and llguidance: {exc}") from None
        kw = {"subfolder": cfg.subfolder} if cfg.subfolder else {}
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
        dtype = (torch.bfloat16 if device.type == "cuda" else torch.float32) if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        try:
            model = AutoModelForImageTextToText.from_pretrained(cfg.model, dtype=dtype, **kw).to(device).eval()
        except (OSError, ValueError) as exc:
            raise PlannerUnavailable(f"cannot load the Builder model {where}: {exc}") from None
        try:
            processor = image_only_processor().from_pretrained(cfg.model, **kw)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):  # another family's: the stock one may do (with torchvision)
            try:
                processor = AutoProcessor.from_pretrained(cfg.model, **kw)
            except (OSError, ValueError, ImportError) as exc:
                raise PlannerUnavailable(f"cannot load the processor of {where}: {exc}") from None
        tokenizer = processor.tokenizer
        vocab = model.get_output_embeddings().out_features
        eos = [tokenizer.eos_token_id]
        extra = model.generation_config.eos_token_id
        eos += [i for i in ([extra] if isinstance(extra, int) else extra or []) if i not in eos]
        lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=eos)
        close_ids = tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
        banned = _think_banned(lltok, len(tokenizer), vocab, eos).to(device)
        return _Loaded(model, processor, tokenizer, GrammarCompiler(lltok), device, eos, close_ids, banned)

    def _inputs(self, loaded: _Loaded, request: PlanRequest) -> dict[str, Any]:
        from PIL import Image

        text = feedback_text(request)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = loaded.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + THINK_OPEN
        image = Image.fromarray(_rgb(request.image))
        scale = self.config.image_side / max(image.size)
        image = image.resize((max(28, round(image.width * scale)), max(28, round(image.height * scale))), Image.BICUBIC)
        batch = loaded.processor(text=[prompt], images=[image], return_tensors="pt")
        return {k: v.to(loaded.device) for k, v in batch.items()}

    def _sampling(self) -> dict[str, Any]:
        """Only these settings, as upstream's vLLM call: the checkpoint's own generation config
        (Qwen2.5-VL ships top_k 1 and a repetition penalty) is overridden."""
        common = {"top_k": None, "repetition_penalty": 1.0}
        if self.config.temperature <= 0:
            return {"do_sample": False, "temperature": None, "top_p": None, **common}
        return {"do_sample": True, "temperature": self.config.temperature, "top_p": self.config.top_p, **common}


class _Decoder:
    """The logits processor of one plan: free reasoning, the closing tag, then the workflow."""

    def __init__(self, loaded: _Loaded, grammar: WorkflowGrammar, max_think: int, check_cancelled: Callable[[], None]):
        import torch

        self.loaded = loaded
        self.grammar = grammar
        self.max_think = max_think
        self.check_cancelled = check_cancelled
        self.think: list[int] = []
        self.forced = list(loaded.close_ids) if max_think == 0 else []
        self.cut = max_think == 0
        self.matcher: StepwiseMatcher | None = None
        self.json_tokens = 0
        self.mask_seconds = 0.0
        self.first = True
        self.bitmask = torch.full((1, (loaded.compiler.tokenizer.vocab_size + 31) // 32), -1, dtype=torch.int32)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.check_cancelled()
        if not self.first:
            self._consume(int(input_ids[0, -1]))
        self.first = False
        if self.forced:
            return _only(scores, self.forced[0])
        if self.matcher is None:
            return scores.masked_fill(self.loaded.think_banned[:, : scores.shape[1]], float("-inf"))
        if self.matcher.done:
            return _only(scores, self.loaded.eos[0])
        started = time.perf_counter()
        self.matcher.fill_bitmask(self.bitmask)
        bits = np.unpackbits(self.bitmask.numpy().view(np.uint8), bitorder="little")[: scores.shape[1]]
        banned = torch.from_numpy(bits == 0).to(scores.device).unsqueeze(0)
        self.mask_seconds += time.perf_counter() - started
        return scores.masked_fill(banned, float("-inf"))

    def _consume(self, token: int) -> None:
        if self.matcher is not None:
            self.json_tokens += 1
            self.matcher.consume(token)
        elif self.forced:
            self.forced.pop(0)
            if not self.forced:
                self.matcher = StepwiseMatcher(self.grammar, self.loaded.compiler)
        else:
            self.think.append(token)
            if THINK_CLOSE in self.loaded.tokenizer.decode(self.think[-len(THINK_CLOSE):]):
                self.matcher = StepwiseMatcher(self.grammar, self.loaded.compiler)
            elif len(self.think) >= self.max_think:
                self.forced, self.cut = list(self.loaded.close_ids), True


def _only(scores: Any, token: int) -> Any:
    forced = scores.new_full(scores.shape, float("-inf"))
    forced[:, token] = 0.0
    return forced


def _think_banned(lltok: Any, size: int, vocab: int, eos: list[int]) -> Any:
    """Tokens reasoning may not use: the end of text, special tokens, the padding beyond the
    tokenizer, and any token with text after a '>' (so '</think>' always ends a token and the
    workflow starts on a fresh one)."""
    import torch

    after_close = re.compile(rb">\s*\S")
    flags = [i in eos or lltok.is_special_token(i) or bool(after_close.search(lltok.decode_bytes([i]))) for i in range(size)]
    return torch.tensor([flags + [True] * (vocab - size)])


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]
