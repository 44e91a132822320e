"""A tiny random-weight Qwen2.5-VL Builder, built locally and saved like the released one.

The tokenizer is a byte-level BPE trained here on workflow-like text, so JSON keys, brick ids
and references are single tokens as they are for the real model. The checkpoint is saved to
`<tmp>/Builder` and loaded by the tests through `MLLMPlanner`'s own loading code.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from bricks import Registry
from builder.grammar import (
    GrammarCompiler,
    GrammarError,
    StepwiseMatcher,
    WorkflowGrammar,
)
from server.settings import Settings

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>"]  # fmt: skip
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus(registry: Registry) -> list[str]:
    """Workflow-shaped text over the real bricks, plus some reasoning-like English."""
    lines = ["<think>The user wants to remove the dog, so I segment it first.</think>",
             "change the background to a beach; make it warmer; anime style; a photo of a cat"]  # fmt: skip
    for n, brick in enumerate(registry.all(), 1):
        spec = brick.spec
        step = {
            "step": n % 9 + 1,
            "model": spec.builder_id,
            "input": {p.name: "init[image]" if p.type == "Image" else None for p in spec.inputs},
            "output": {o.name: f"step{n % 9 + 1}[{o.name}]" for o in spec.outputs},
        }
        lines += [json.dumps(step), json.dumps(step, indent=2), json.dumps({"result": f"[step{n % 9 + 1}[image]]"})]
    return lines * 4


def _tokenizer(registry: Registry):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_corpus(registry), trainer)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tok = Qwen2Tokenizer(vocab=bpe.get_vocab(), merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_tokens(SPECIAL, special_tokens=True)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_tiny_builder(directory: Path, registry: Registry, tok=None) -> Path:
    """Save a random tiny Qwen2.5-VL with tokenizer (by default one trained on the bricks) and
    image-only processor to `directory/Builder`."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
    )

    from bricks.gpu.qwen import image_only_processor

    tok = _tokenizer(registry) if tok is None else tok
    ids = tok.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None,
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    images = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = image_only_processor()(image_processor=images, tokenizer=tok, chat_template=CHAT_TEMPLATE)
    out = directory / "Builder"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return directory


@pytest.fixture(scope="session")
def cpu_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The real registry with every CPU brick available."""
    return Registry.from_settings(Settings(cache_dir=tmp_path_factory.mktemp("cache"), backend="cpu"))


@pytest.fixture(scope="session")
def tiny_builder(tmp_path_factory: pytest.TempPathFactory, cpu_registry: Registry) -> Path:
    """The directory holding `Builder/` (model, tokenizer, processor), like the Hub repository."""
    return build_tiny_builder(tmp_path_factory.mktemp("tiny-builder"), cpu_registry)


def check(grammar: WorkflowGrammar, text: str) -> str | None:
    """None when the grammars accept `text` as a whole workflow, else why not: byte by byte."""
    matcher = StepwiseMatcher(grammar, _byte_compiler())
    try:
        for byte in text.encode():
            matcher.consume(byte)
    except GrammarError as exc:
        return str(exc)
    return None if matcher.done else "the workflow is incomplete"


@functools.cache
def _byte_compiler() -> GrammarCompiler:
    """Grammars over a tokenizer whose tokens are the 256 bytes (plus an end token)."""
    import llguidance

    class _Bytes:
        def __init__(self) -> None:
            self.eos_token_id, self.bos_token_id = 256, None
            self.tokens = [bytes([i]) for i in range(256)] + [b"<end>"]
            self.special_token_ids = [256]

        def __call__(self, text: bytes | str) -> list[int]:
            return list(text if isinstance(text, bytes) else text.encode())

    return GrammarCompiler(llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes())))
