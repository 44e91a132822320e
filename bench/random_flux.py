"""FLUX.1 Fill with random weights, built on the device in the target dtype: no download.

`REAL` is the real architecture (19 double + 38 single blocks, 24 heads x 128, in_channels 384)
and the real FLUX VAE; the text encoders have the right output widths but one layer each (the
transformer dominates). `TINY` is the same code at a size that runs on a CPU in seconds.
Used by bench/gpu_check.py.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setup:
    device: str
    dtype: str
    size: int  # image side in pixels
    text_tokens: int  # T5 sequence length
    steps: int  # timed steps per measurement (after `warmup`)
    warmup: int
    rank: int  # LoRA rank
    transformer: dict[str, Any]
    vae: dict[str, Any]
    clip_width: int
    t5_width: int


REAL = Setup(
    device="cuda", dtype="bfloat16", size=1024, text_tokens=512, steps=10, warmup=2, rank=32,
    transformer=dict(
        patch_size=1, in_channels=384, out_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    ),
    vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, shift_factor=0.1159, scaling_factor=0.3611),
    clip_width=768, t5_width=4096,
)  # fmt: skip
TINY = Setup(
    device="cpu", dtype="float32", size=64, text_tokens=16, steps=2, warmup=1, rank=4,
    transformer=dict(
        patch_size=1, in_channels=384, out_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 4, 8),
    ),
    vae=dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, shift_factor=0.0609, scaling_factor=1.5035),
    clip_width=32, t5_width=32,
)  # fmt: skip


def construct(cls: type, setup: Setup, *args: Any, **kwargs: Any) -> Any:
    """`cls(...)` with its weights created on the device in the target dtype (no fp32 copy of 12 B params)."""
    import torch

    dtype = getattr(torch, setup.dtype)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(setup.device):
            return cls(*args, **kwargs)
    finally:
        torch.set_default_dtype(previous)


def tokenizers(text_tokens: int) -> tuple[Any, Any]:
    """A byte-level CLIP BPE and a character-level T5 Unigram tokenizer, built in memory."""
    from transformers import CLIPTokenizer, T5TokenizerFast

    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    symbols = [chr(b) if b in keep else chr(next(extra)) for b in range(256)]
    vocab = [*symbols, *(s + "</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"]
    clip = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[], model_max_length=77)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.printable if not c.isspace()]
    t5 = T5TokenizerFast(vocab=pieces, extra_ids=0, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", model_max_length=text_tokens)
    return clip, t5


def build_pipeline(setup: Setup) -> Any:
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    clip_tok, t5_tok = tokenizers(setup.text_tokens)
    transformer = construct(FluxTransformer2DModel, setup, **setup.transformer)
    vae = construct(
        AutoencoderKL, setup, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, norm_num_groups=32, use_quant_conv=False,
        use_post_quant_conv=False, **setup.vae,
    )  # fmt: skip
    clip = construct(CLIPTextModel, setup, CLIPTextConfig(
        vocab_size=len(clip_tok), hidden_size=setup.clip_width, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=setup.clip_width,
        bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
    ))  # fmt: skip
    t5 = construct(T5EncoderModel, setup, T5Config(
        vocab_size=len(t5_tok), d_model=setup.t5_width, d_ff=64, d_kv=8, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8,
    ))  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)
    pipe = FluxFillPipeline(
        scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=clip_tok, text_encoder_2=t5, tokenizer_2=t5_tok,
        transformer=transformer,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe
