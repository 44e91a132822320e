"""GPU check: what the FLUX bricks cost on this card, with no download.

Builds the real FLUX.1 Fill architecture (19 double + 38 single blocks, 24 heads x 128, in_channels
384) and the real FLUX VAE with random weights, with text encoders of the right output widths but
one layer each (the transformer dominates), and measures at 1024x1024 (4096 image + 512 text tokens):

- seconds per denoising step of the transformer alone, and of a whole `FluxFillPipeline` run;
- peak GPU memory;
- LoRA: loading two random rank-32 adapters on the attention projections, switching between them
  with `set_adapters` (what the model manager does), a step with one active, and a hot-swap;
- step caching: first-block cache (diffusers' `FirstBlockCacheConfig`) against none. Random weights
  say nothing about how often real images skip, so the "always skip" row bounds the gain;
- fp8 layerwise casting (the `layerwise_fp8` runtime option): step time and memory.

`--dry-run` runs the same code with a tiny config on the CPU in seconds.

Run: .venv/bin/python bench/gpu_check.py --out gpu_check.json      (one H100: about 2-3 minutes)
     .venv/bin/python bench/gpu_check.py --dry-run --out /tmp/dry.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from random_flux import REAL, TINY, Setup, build_pipeline  # bench/ is the script folder, on sys.path

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
FBC_THRESHOLD = 0.1  # a typical first-block-cache threshold for FLUX
ALWAYS = 1e9  # a threshold no step exceeds: every step after the first reuses the cache


# -- measuring -----------------------------------------------------------------------------------
def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gb(reset: bool = False) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    peak = torch.cuda.max_memory_allocated() / 2**30
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return round(peak, 2)


def timed(fn: Any) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def transformer_steps(transformer: Any, setup: Setup, steps: int, *, cached: bool = False) -> dict[str, Any]:
    """Euler steps of the transformer alone on random Fill inputs; per-step seconds after the warm-up."""
    import torch

    dtype, device = getattr(torch, setup.dtype), setup.device
    side = setup.size // 16  # 8x VAE, then 2x2 patches
    g = torch.Generator(device).manual_seed(0)
    latents = torch.randn(1, side * side, 64, generator=g, device=device, dtype=dtype)
    condition = torch.randn(1, side * side, setup.transformer["in_channels"] - 64, generator=g, device=device, dtype=dtype)
    text = torch.randn(1, setup.text_tokens, setup.transformer["joint_attention_dim"], generator=g, device=device, dtype=dtype)
    pooled = torch.randn(1, setup.transformer["pooled_projection_dim"], generator=g, device=device, dtype=dtype)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    img_ids = torch.stack([torch.zeros_like(rows), rows, cols], -1).reshape(-1, 3).to(device, dtype)
    txt_ids = torch.zeros(setup.text_tokens, 3, device=device, dtype=dtype)
    guidance = torch.full((1,), 30.0, device=device, dtype=torch.float32)
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    times = []
    if cached:
        transformer._reset_stateful_cache()
    with transformer.cache_context("check") if cached else nullcontext(), torch.inference_mode():
        for sigma, after in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):

            def step(sigma: float = sigma, after: float = after) -> None:
                nonlocal latents
                velocity = transformer(
                    hidden_states=torch.cat([latents, condition], -1), timestep=torch.full((1,), sigma, device=device, dtype=dtype),
                    guidance=guidance, pooled_projections=pooled, encoder_hidden_states=text, txt_ids=txt_ids,
                    img_ids=img_ids, return_dict=False,
                )[0]  # fmt: skip
                latents = latents + (after - sigma) * velocity

            times.append(timed(step))
    return {"step_s": times, "finite": bool(torch.isfinite(latents).all())}


def steady(times: list[float], warmup: int) -> float:
    return statistics.median(times[warmup:])


def measure_transformer(pipe: Any, setup: Setup) -> dict[str, Any]:
    run = transformer_steps(pipe.transformer, setup, setup.warmup + setup.steps)
    return {"step_s": steady(run["step_s"], setup.warmup), "finite": run["finite"], "peak_gb": peak_gb(reset=True)}


def measure_pipeline(pipe: Any, setup: Setup) -> dict[str, Any]:
    """A whole FluxFillPipeline run (text encoders, VAE encode of image and mask, steps, VAE decode)."""
    import numpy as np
    import torch
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (setup.size, setup.size, 3), dtype=np.uint8))
    mask = np.zeros((setup.size, setup.size), np.uint8)
    mask[setup.size // 4 : 3 * setup.size // 4, setup.size // 4 : 3 * setup.size // 4] = 255
    marks: list[float] = []

    def on_step(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        sync()
        marks.append(time.perf_counter())
        return {}

    def run() -> None:
        pipe(
            prompt="a red brick wall with ivy", image=image, mask_image=Image.fromarray(mask), height=setup.size, width=setup.size,
            num_inference_steps=setup.steps, guidance_scale=30.0, generator=torch.Generator("cpu").manual_seed(0),
            max_sequence_length=setup.text_tokens, output_type="np", callback_on_step_end=on_step,
        )  # fmt: skip

    run()  # warm-up (VAE kernels)
    marks.clear()
    sync()
    start = time.perf_counter()
    total = timed(run)
    steps = [b - a for a, b in zip([start, *marks], marks, strict=False)][1:]  # the first includes encoding
    return {"total_s": total, "steps": setup.steps, "step_s": statistics.median(steps), "peak_gb": peak_gb(reset=True)}


def measure_cache(transformer: Any, setup: Setup, plain_step_s: float) -> dict[str, Any]:
    from diffusers import FirstBlockCacheConfig

    out = {}
    computed = []  # the last block's output layer runs only when a step is computed, not reused
    hook = transformer.single_transformer_blocks[-1].proj_out.register_forward_hook(lambda *_: computed.append(1))
    for label, threshold in (("first_block_cache", FBC_THRESHOLD), ("first_block_cache_always_skip", ALWAYS)):
        transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))
        try:
            run = transformer_steps(transformer, setup, setup.warmup + setup.steps, cached=True)
        finally:
            transformer.disable_cache()
        times = run["step_s"][setup.warmup :]
        out[label] = {
            "threshold": threshold, "step_s": statistics.mean(times), "speedup": plain_step_s / statistics.mean(times),
            "steps_computed": len(computed), "steps": setup.warmup + setup.steps, "finite": run["finite"],
        }  # fmt: skip
        computed.clear()
    hook.remove()
    return out


def random_lora(transformer: Any, rank: int, seed: int) -> dict[str, Any]:
    """A diffusers/PEFT-layout LoRA on every attention projection, small random values."""
    import torch

    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".attn.")[-1] in LORA_TARGETS and ".attn." in name:
            state[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=g) * 0.01
            state[f"transformer.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=g) * 0.01
    return {k: v.to(next(transformer.parameters()).dtype) for k, v in state.items()}


def measure_lora(pipe: Any, setup: Setup, folder: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    files = {}
    for seed, name in enumerate(("a", "b", "c")):
        state = random_lora(pipe.transformer, setup.rank, seed)
        save_file(state, str(folder / f"{name}.safetensors"))
        files[name] = f"{name}.safetensors"
    out: dict[str, Any] = {"rank": setup.rank, "modules": len(state) // 2, "file_mb": round((folder / "a.safetensors").stat().st_size / 2**20, 1)}
    out["load_s"] = [timed(lambda n=n: pipe.load_lora_weights(str(folder), weight_name=files[n], adapter_name=n)) for n in ("a", "b")]
    switches = [timed(lambda n=n: pipe.set_adapters([n], adapter_weights=[1.0])) for n in ("a", "b") * 5]
    out["switch_s"] = statistics.median(switches)
    out["step_with_lora_s"] = steady(transformer_steps(pipe.transformer, setup, setup.warmup + 3)["step_s"], setup.warmup)
    try:
        out["hotswap_s"] = timed(lambda: pipe.load_lora_weights(str(folder), weight_name=files["c"], adapter_name="a", hotswap=True))
    except Exception as exc:  # a diffusers or peft without hot-swap: report, do not fail the check
        out["hotswap_s"] = None
        out["hotswap_error"] = f"{type(exc).__name__}: {exc}"
    pipe.unload_lora_weights()
    out["peak_gb"] = peak_gb(reset=True)
    return out


def measure_fp8(transformer: Any, setup: Setup) -> dict[str, Any]:
    import torch

    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=getattr(torch, setup.dtype))
    weights_gb = sum(p.numel() * p.element_size() for p in transformer.parameters()) / 2**30
    step = steady(transformer_steps(transformer, setup, setup.warmup + 3)["step_s"], setup.warmup)
    return {"step_s": step, "weights_gb": weights_gb, "peak_gb": peak_gb(reset=True)}


def quiet() -> None:
    """Silence library notices about what this check does on purpose (random LoRAs, a tiny CLIP without LoRA keys)."""
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*Already found a `peft_config`.*")


# -- reporting -----------------------------------------------------------------------------------
def table(figures: dict[str, Any]) -> str:
    def gb(v: float | None) -> str:
        return "n/a (cpu)" if v is None else f"{v:.1f} GiB"

    t, p, c, lora, fp8 = (figures.get(k, {}) for k in ("transformer", "pipeline", "cache", "lora", "fp8"))
    rows = [("build (random weights)", lambda: f"{figures['build_s']:.1f} s, transformer {figures['transformer_params_b']:.3g} B params")]
    rows += [
        ("transformer step", lambda: f"{t['step_s']:.3f} s  (outputs finite: {t['finite']}), peak {gb(t['peak_gb'])}"),
        ("FluxFillPipeline run", lambda: f"{p['total_s']:.2f} s for {p['steps']} steps, {p['step_s']:.3f} s per step, peak {gb(p['peak_gb'])}"),
    ]  # fmt: skip
    for key, what in (("first_block_cache", f"first-block cache {FBC_THRESHOLD}"), ("first_block_cache_always_skip", "first-block cache, always skip")):
        rows.append((what, lambda f=c.get(key, c): f"{f['step_s']:.3f} s per step, x{f['speedup']:.2f}, {f['steps_computed']} of {f['steps']} steps computed"))
    rows += [
        ("LoRA load (2 adapters)", lambda: f"{lora['load_s'][0]:.2f} s, {lora['load_s'][1]:.2f} s (rank {lora['rank']}, {lora['modules']} modules, {lora['file_mb']} MB each)"),
        ("LoRA switch (set_adapters)", lambda: f"{lora['switch_s'] * 1000:.1f} ms"),
        ("LoRA hot-swap", lambda: f"{lora['hotswap_s']:.2f} s" if lora["hotswap_s"] is not None else lora["hotswap_error"]),
        ("step with a LoRA active", lambda: f"{lora['step_with_lora_s']:.3f} s"),
        ("fp8 layerwise casting", lambda: f"{fp8['step_s']:.3f} s per step, weights {fp8['weights_gb']:.1f} GiB, peak {gb(fp8['peak_gb'])}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    lines = []
    for name, value in rows:
        try:
            text = value()
        except (KeyError, TypeError):  # that section failed: its error is in the figures
            text = "failed (see the error above)"
        lines.append(f"{name:<{width}}  {text}")
    return "\n".join(lines)


def attempt(figures: dict[str, Any], name: str, measure: Any) -> None:
    """One section of the check: a failure is printed and recorded, and the other sections still run."""
    try:
        figures[name] = measure()
    except Exception as exc:
        traceback.print_exc()
        figures[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny config on the CPU (seconds)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--steps", type=int, help="timed steps per measurement")
    args = parser.parse_args(argv)

    import diffusers
    import torch

    quiet()
    setup = TINY if args.dry_run else REAL
    if args.steps:
        setup = Setup(**{**asdict(setup), "steps": args.steps})
    if setup.device == "cpu":
        torch.set_num_threads(1)  # tiny tensors: threads only contend
    if setup.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible; use --dry-run to check the script on the CPU")
    device_name = torch.cuda.get_device_name() if setup.device == "cuda" else platform.processor() or "cpu"
    started = time.perf_counter()
    pipe = build_pipeline(setup)
    sync()
    figures: dict[str, Any] = {
        "build_s": time.perf_counter() - started, "transformer_params_b": sum(p.numel() for p in pipe.transformer.parameters()) / 1e9,
    }  # fmt: skip
    peak_gb(reset=True)
    attempt(figures, "transformer", lambda: measure_transformer(pipe, setup))
    attempt(figures, "pipeline", lambda: measure_pipeline(pipe, setup))
    attempt(figures, "cache", lambda: measure_cache(pipe.transformer, setup, figures["transformer"]["step_s"]))
    with tempfile.TemporaryDirectory() as folder:
        attempt(figures, "lora", lambda: measure_lora(pipe, setup, Path(folder)))
    attempt(figures, "fp8", lambda: measure_fp8(pipe.transformer, setup))
    figures["wall_s"] = time.perf_counter() - started
    failed = [k for k, v in figures.items() if isinstance(v, dict) and "error" in v]

    side = setup.size // 16
    print(f"FLUX.1 Fill architecture, random {setup.dtype} weights, on {device_name}: {setup.size}x{setup.size} "
          f"({side * side} image + {setup.text_tokens} text tokens), {setup.steps} timed steps; "
          f"torch {torch.__version__}, diffusers {diffusers.__version__}")  # fmt: skip
    print(table(figures))
    print(f"wall {figures['wall_s']:.1f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.out:
        report = {"device": device_name, "setup": asdict(setup), "torch": torch.__version__, "diffusers": diffusers.__version__, **figures}
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
