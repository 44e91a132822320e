"""The `transformers` planner: a local Qwen2.5-VL-family Builder with constrained decoding.

The model (by default the released Lego-Edit Builder) is loaded on the first plan. It sees the
image and the prompt, reasons freely inside `<think>…</think>` (bounded; the block is closed
for it when the budget runs out), then writes the workflow under the step-by-step grammars of
`builder.grammar`, so every plan parses, names only the bricks at hand with their real inputs,
and cites only earlier outputs of a fitting type. torch, transformers and llguidance are
imported on first use only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
import anyio.to_thread
import numpy as np

from bricks.gpu import qwen
from bricks.gpu.qwen import THINK_CLOSE, THINK_OPEN, Qwen

from ..grammar import GrammarError, GrammarLimits, StepwiseMatcher, WorkflowGrammar, compiler_for
from .base import PlannerUnavailable, PlanRequest, PlanText, feedback_text

@dataclass(frozen=True)
class MLLMConfig:
    model: str = "xiaomi-research/lego-edit"
    """A Hub repository id or a local directory."""
    subfolder: str | None = "Builder"
    device: str = "auto"
    """'auto' (cuda, else mps, else cpu: `qwen.resolve_device`), or a torch device such as 'cuda:1'."""
    dtype: str = "auto"
    """'auto' (bfloat16 on cuda, float16 on mps, float32 on cpu), or a torch dtype name."""
    max_think_tokens: int = 512
    temperature: float = 0.0
    """0 decodes greedily, as upstream does."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed of the first plan; plan n uses seed + n, so re-plans differ but runs repeat."""
    image_side: int = 448
    """Long side the image is resized to, as upstream does."""
    limits: GrammarLimits = field(default_factory=GrammarLimits)


class MLLMPlanner:
    """`MLLMPlanner("xiaomi-research/lego-edit", subfolder="Builder", temperature=0.7, ...)`:
    the model, then any other `MLLMConfig` field by name."""

    name = "transformers"

    def __init__(self, model: str = MLLMConfig.model, *, loader: Callable[[], Qwen] | None = None, **options: Any):
        """`loader`, when given, supplies the loaded model (the server shares the GPU bricks' Builder)."""
        self.config = MLLMConfig(model=model, **options)
        self._loader = loader
        self._loaded: Qwen | None = None
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

    def load(self) -> Qwen:
        """Load the model, processor and grammar tokenizer once; a missing model is `PlannerUnavailable`."""
        if self._loader is not None:
            return self._loader()  # its owner caches (and may evict) it
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> Qwen:
        cfg = self.config
        try:
            return qwen.load(cfg.model, cfg.subfolder, *qwen.resolve_device(cfg.device, cfg.dtype))
        except ImportError as exc:  # torch itself
            raise PlannerUnavailable(f"the transformers planner needs torch, transformers and llguidance: {exc}") from None
        except qwen.QwenUnavailable as exc:
            raise PlannerUnavailable(str(exc)) from None

    def _inputs(self, loaded: Qwen, request: PlanRequest) -> dict[str, Any]:
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

    def __init__(self, loaded: Qwen, grammar: WorkflowGrammar, max_think: int, check_cancelled: Callable[[], None]):
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
        self.compiler = compiler_for(loaded.lltok)
        self.bitmask = qwen.grammar_bitmask(loaded.lltok.vocab_size)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
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
        masked = qwen.allowed_only(self.matcher, self.bitmask, scores)
        self.mask_seconds += time.perf_counter() - started
        return masked

    def _consume(self, token: int) -> None:
        if self.matcher is not None:
            self.json_tokens += 1
            self.matcher.consume(token)
        elif self.forced:
            self.forced.pop(0)
            if not self.forced:
                self.matcher = StepwiseMatcher(self.grammar, self.compiler)
        else:
            self.think.append(token)
            if THINK_CLOSE in self.loaded.tokenizer.decode(self.think[-len(THINK_CLOSE):]):
                self.matcher = StepwiseMatcher(self.grammar, self.compiler)
            elif len(self.think) >= self.max_think:
                self.forced, self.cut = list(self.loaded.close_ids), True


def _only(scores: Any, token: int) -> Any:
    forced = scores.new_full(scores.shape, float("-inf"))
    forced[:, token] = 0.0
    return forced


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]
