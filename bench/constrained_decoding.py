"""Cost of constrained decoding per token (target <= 10 % over free decoding). Prints one run's figures.

1. The tiny random Qwen2.5-VL of the test suite (a 514-token vocabulary): whole plans under the
   step-by-step grammars (reasoning off, every token constrained) against free sampling of as
   many tokens from the same prompt, alternated, medians of the per-token times.
2. A realistic vocabulary: a byte-level BPE of about 65k tokens trained here on the installed
   Python sources, and the same tiny model shape with that vocabulary: the grammar's own cost
   per token (mask, unpacking, consuming, rebuilding the grammar after each step) while stepping
   through a real workflow, and constrained against free generation again.
3. Where CUDA is available: a random model of the released Builder's size (Qwen2.5-VL-7B text
   shape, bf16) with that vocabulary, constrained against free generation.

Run: .venv/bin/python bench/constrained_decoding.py
"""

from __future__ import annotations

import json
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's tiny Builder

from bricks import Registry
from builder.grammar import (
    GrammarCompiler,
    GrammarLimits,
    StepwiseMatcher,
    WorkflowGrammar,
)
from builder.planners.base import PlanRequest
from builder.planners.mllm import MLLMPlanner
from server.settings import Settings
from tests.builder import conftest as tiny

INSTRUCTION = "remove the dog and make it warmer"
WORKFLOW = {"process": INSTRUCTION, "pipeline": [
    {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]", "image": None}},
    {"step": 2, "model": "FASTINPAINT", "input": {"image": "init[image]", "mask": "step1[mask]"}, "output": {"image": "step2[image]", "score": None}},
    {"step": 3, "model": "ADJUST", "input": {"image": "step2[image]", "mask": None, "brightness": 0.1, "contrast": None, "saturation": None,
                                              "gamma": None, "warmth": 0.3, "sharpness": None}, "output": {"image": "step3[image]"}},
    {"result": "[step3[image]]"}]}  # fmt: skip


def big_tokenizer(vocab_size: int = 65_536, megabytes: int = 40):
    """A byte-level BPE trained on installed Python files, wrapped like the tiny one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    files, size = [], 0
    for path in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py")):
        files.append(str(path))
        size += path.stat().st_size
        if size > megabytes * 2**20:
            break
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train(files, trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tok = Qwen2Tokenizer(vocab=bpe.get_vocab(), merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_tokens(tiny.SPECIAL, special_tokens=True)
    tok.chat_template = tiny.CHAT_TEMPLATE
    return tok


def compare(planner: MLLMPlanner, request: PlanRequest, plans: int) -> tuple[float, float, float]:
    """Median ms per token: constrained plans, free decoding of as many tokens (alternated), the mask alone.

    Both decode the same way as the planner is configured (greedy or sampled); sampling is cheaper
    when the grammar leaves few tokens, so the greedy ratio is the one that isolates the grammar.
    """
    loaded = planner.load()
    inputs = planner._inputs(loaded, request)
    constrained, free, masks = [], [], []
    for _ in range(plans):
        plan = planner.plan_sync(request)
        n = plan.details["tokens"]
        constrained.append(plan.details["seconds"] / n * 1000)
        masks.append(plan.details["mask_seconds"] / n * 1000)
        t = time.perf_counter()
        loaded.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, pad_token_id=loaded.tokenizer.pad_token_id, **planner._sampling())
        free.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(constrained), statistics.median(free), statistics.median(masks)


def walk(grammar: WorkflowGrammar, compiler: GrammarCompiler, tokens: list[int]) -> dict[str, float]:
    """Step a StepwiseMatcher through `tokens` as the decoder does: mask, unpack, consume."""
    lltok = compiler.tokenizer
    bitmask = torch.full((1, (lltok.vocab_size + 31) // 32), -1, dtype=torch.int32)
    t = time.perf_counter()
    matcher = StepwiseMatcher(grammar, compiler)
    start = time.perf_counter() - t
    mask = consume = 0.0
    for token in tokens:
        t = time.perf_counter()
        matcher.unsafe_compute_mask_ptr(bitmask.data_ptr(), bitmask.numel() * bitmask.element_size())
        bits = np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[: lltok.vocab_size]
        allowed = torch.from_numpy(bits != 0)
        mask += time.perf_counter() - t
        assert allowed[token], lltok.dbg_tokens([token])
        t = time.perf_counter()
        matcher.consume(token)
        consume += time.perf_counter() - t
    assert matcher.done
    return {"first grammar ms": start * 1000, "mask ms/token": mask / len(tokens) * 1000, "consume+rebuild ms/token": consume / len(tokens) * 1000}


def report(label: str, planner: MLLMPlanner, request: PlanRequest, plans: int) -> None:
    c, f, mask = compare(planner, request, plans)
    print(f"{label}: constrained {c:.2f} ms/token, free {f:.2f} ms/token, ratio {c / f:.3f} ({(c / f - 1) * 100:+.1f} %); "
          f"mask alone {mask:.3f} ms/token")  # fmt: skip


def main(plans: int = 9) -> None:
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp(prefix="lego-bench-"))
    registry = Registry.from_settings(Settings(cache_dir=root / "cache", backend="cpu"))
    bricks = tuple(b.spec for b in registry.available())
    image = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    request = PlanRequest(f"Plan the edit as a workflow.\nInstruction: {INSTRUCTION}", INSTRUCTION, image, bricks, {"image": "Image"})
    limits = GrammarLimits(max_steps=4, max_string=24, max_whitespace=2)
    options = {"subfolder": "Builder", "device": "cpu", "max_think_tokens": 0, "seed": 0, "limits": limits}

    tiny.build_tiny_builder(root / "small", registry)
    for temperature in (0.0, 1.0):
        small = MLLMPlanner(str(root / "small"), temperature=temperature, **options)
        report(f"tiny model, {len(small.load().tokenizer)} tokens, temperature {temperature}", small, request, plans)

    t = time.perf_counter()
    tok = big_tokenizer()
    print(f"\n{len(tok)}-token byte-level BPE trained in {time.perf_counter() - t:.1f} s")
    tiny.build_tiny_builder(root / "big", registry, tok)
    big = MLLMPlanner(str(root / "big"), temperature=0.0, **options)
    t = time.perf_counter()
    loaded = big.load()
    print(f"load with grammar tokenizer and reasoning mask: {time.perf_counter() - t:.2f} s")
    grammar = WorkflowGrammar(bricks, {"image": "Image"}, INSTRUCTION, GrammarLimits())
    text = json.dumps(WORKFLOW, indent=2)
    tokens = loaded.tokenizer.encode(text, add_special_tokens=False)
    compiler = GrammarCompiler(loaded.lltok)
    walked = [walk(grammar, compiler, tokens) for _ in range(6)]  # the first compiles, the others reuse
    print(f"grammar alone over a {len(tokens)}-token, 3-step workflow (indented):")
    for label, runs in (("  compiling each grammar", walked[:1]), ("  grammars compiled before", walked[1:])):
        print(label + ": " + ", ".join(f"{k} {statistics.median(w[k] for w in runs):.3f}" for k in walked[0]))
    for temperature in (0.0, 1.0):
        big = MLLMPlanner(str(root / "big"), temperature=temperature, **options)
        report(f"tiny model, {len(loaded.tokenizer)} tokens, temperature {temperature}", big, request, plans)

    if torch.cuda.is_available():
        print()
        for temperature in (0.0, 1.0):
            sized = MLLMPlanner(str(root / "big"), temperature=temperature, **{**options, "device": "cuda"})
            builder_sized(sized)
            report(f"Builder-sized random model (7B), {len(loaded.tokenizer)} tokens, cuda, temperature {temperature}", sized, request, 4)


def builder_sized(planner: MLLMPlanner) -> None:
    """Swap the loaded tiny model for a random one with Qwen2.5-VL-7B's text shape (the released
    Builder's), same tokenizer; its weights are not initialised: only the time per token matters."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    loaded = planner.load()
    tok, ids = loaded.tokenizer, loaded.tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": loaded.model.get_output_embeddings().out_features, "hidden_size": 3584, "intermediate_size": 18944,
            "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None,
        },
        vision_config={"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 3584, "fullatt_block_indexes": [1]},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    with loaded.device:
        loaded.model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=loaded.model.dtype).eval()


if __name__ == "__main__":
    main()
