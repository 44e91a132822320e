"""A tiny random-weight FLUX Fill pipeline and task LoRAs, saved to temp dirs for the FLUX bricks.

The configs have the real architecture, just narrow (1+1 transformer blocks, in_channels 384 as in
FLUX.1-Fill, a 4-block VAE of 32 channels with 16 latent channels); the CLIP and T5 tokenizers are
built in memory. LoRAs are written in the two layouts a user meets: diffusers/PEFT
(`transformer.….lora_A.weight`) and the kohya/ComfyUI one of the released FLUX LoRAs
(`lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight`).

Import the fixtures by name: `from tests.bricks.gpu.tiny_flux import tiny_flux, flux_run`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import pytest

from bricks import Registry
from server.settings import Settings
from tests.conftest import Bricks

INNER = 32  # transformer width: 2 heads x 16
# library notices the FLUX bricks cannot act on
QUIET = [
    "ignore:Already found a `peft_config` attribute:UserWarning",  # peft's notice when a 2nd adapter is added
]


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins CLIP's byte-level BPE uses for bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def build_tokenizers():
    from transformers import CLIPTokenizer, T5TokenizerFast

    symbols = _bytes_to_unicode()
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("o", "n</w>")]
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), "<|startoftext|>", "<|endoftext|>"]
    clip = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=77)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.printable if not c.isspace()] + [("▁" + c, -2.5) for c in string.ascii_letters]
    t5 = T5TokenizerFast(vocab=pieces, extra_ids=0, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    return clip, t5


def build_fill(out: Path) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip_tok, t5_tok = build_tokenizers()
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=384, out_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 4, 8),
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32,) * 4, layers_per_block=1, latent_channels=16, norm_num_groups=32, use_quant_conv=False,
        use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    )  # fmt: skip
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(clip_tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
    ))  # fmt: skip
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
    ))  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)
    FluxFillPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=clip_tok, text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tok, transformer=transformer,
    ).save_pretrained(out)  # fmt: skip
    return out


def _pair(seed: int, rank: int, n_in: int, n_out: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(rank, n_in, generator=g) * 0.1, torch.randn(n_out, rank, generator=g) * 0.1


def write_peft_lora(path: Path, seed: int, rank: int = 4) -> Path:
    """diffusers/PEFT layout, as `FluxFillPipeline.save_lora_weights` writes it."""
    from safetensors.torch import save_file

    sd = {}
    targets = [f"transformer_blocks.0.attn.{m}" for m in ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj")]
    targets += [f"single_transformer_blocks.0.attn.{m}" for m in ("to_q", "to_k", "to_v")]
    for i, target in enumerate(targets):
        down, up = _pair(seed * 100 + i, rank, INNER, INNER)
        sd[f"transformer.{target}.lora_A.weight"], sd[f"transformer.{target}.lora_B.weight"] = down, up
    save_file(sd, str(path))
    return path


def write_kohya_lora(path: Path, seed: int, rank: int = 4) -> Path:
    """The kohya/ComfyUI layout of BFL-named FLUX LoRAs: fused qkv, with alphas.

    No `single_blocks_N_linear1`: diffusers splits it at the real FLUX widths (3072, 12288), which
    a tiny transformer cannot have.
    """
    import torch
    from safetensors.torch import save_file

    mlp = 4 * INNER
    shapes = {
        "lora_unet_double_blocks_0_img_attn_qkv": (INNER, 3 * INNER),
        "lora_unet_double_blocks_0_img_attn_proj": (INNER, INNER),
        "lora_unet_double_blocks_0_txt_attn_qkv": (INNER, 3 * INNER),
        "lora_unet_single_blocks_0_linear2": (INNER + mlp, INNER),
    }
    sd = {}
    for i, (name, (n_in, n_out)) in enumerate(shapes.items()):
        sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"] = _pair(seed * 100 + i, rank, n_in, n_out)
        sd[f"{name}.alpha"] = torch.tensor(float(rank))
    save_file(sd, str(path))
    return path


@dataclass(frozen=True)
class TinyFlux:
    fill: Path
    loras: dict[str, tuple[Path, str]]  # model key -> (directory, weight file name)

    def toml(self, path: Path, *, memory_budget_gb: float = 0.0, steps: int = 2) -> Path:
        lines = [
            "[runtime]", 'device = "cpu"', f"steps = {steps}", "guidance = 30.0", f"memory_budget_gb = {memory_budget_gb}",
            "diptych_width = 64",  # halves of 64 px instead of 768: fast
            "[models.flux_fill]", f'id = "{self.fill}"',
        ]  # fmt: skip
        for key, (directory, weight) in self.loras.items():
            lines += [f"[models.{key}]", f'id = "{directory}"', f'weight_name = "{weight}"']
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


@pytest.fixture(scope="session")
def tiny_flux(tmp_path_factory: pytest.TempPathFactory) -> TinyFlux:
    root = tmp_path_factory.mktemp("tiny_flux")
    fill = build_fill(root / "fill")
    loras = root / "loras"
    loras.mkdir()
    # two tasks in the released (kohya) layout, the others in the diffusers layout
    layouts = {"lora_removal": write_kohya_lora, "lora_rcm": write_kohya_lora}
    made = {}
    for seed, key in enumerate(("lora_removal", "lora_rcm", "lora_env", "lora_pose", "lora_style"), start=1):
        write = layouts.get(key, write_peft_lora)
        made[key] = (loras, write(loras / f"{key}.safetensors", seed).name)
    return TinyFlux(fill, made)


def flux_settings(tiny: TinyFlux, tmp_path: Path, **toml: float) -> Settings:
    """Settings whose model file names the tiny models, CPU forced."""
    return Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", models_file=tiny.toml(tmp_path / "models.toml", **toml))


def flux_registry(tiny: TinyFlux, tmp_path: Path, **toml: float) -> Registry:
    """A registry (and so a fresh model manager) on the tiny models."""
    return Registry.from_settings(flux_settings(tiny, tmp_path, **toml))


@pytest.fixture(params=["here", pytest.param("ray", marks=pytest.mark.slow)])
def flux_run(request: pytest.FixtureRequest, tiny_flux: TinyFlux, tmp_path: Path) -> Bricks:
    """Call bricks on the tiny FLUX models (diptych halves of 64 px: see `TinyFlux.toml`), computed
    here and in a Ray Serve deployment."""
    if request.param == "ray":
        from tests.ray_cluster import through_ray

        return Bricks(through_ray(request, flux_settings(tiny_flux, tmp_path)))
    return Bricks(flux_registry(tiny_flux, tmp_path))
