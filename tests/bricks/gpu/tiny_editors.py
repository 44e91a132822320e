"""Tiny random-weight Qwen-Image-Edit-Plus and FLUX.2 [klein] pipelines, saved to temp dirs.

The configs have the released checkpoints' architecture, just narrow: Qwen-Image-Edit-2511's
transformer (`zero_cond_t`, patch 2, 16-channel VAE with 3 downsamplings) under a 2-layer
Qwen2.5-VL; FLUX.2 [klein] 4B's transformer (128 input channels = 32 latent channels x 2x2)
under a Qwen3 with enough layers for the pipeline's default hidden-state taps (9, 18, 27).
Tokenizers are byte-level BPEs trained in memory.

Qwen's processor: the stock `Qwen2VLProcessor` needs torchvision (its video half), which this
machine lacks; the directory names it as the Hub one does, and the product's loader passes an
image-only processor in (`bricks.gpu.diffusion.pipeline_loader`).

Import the fixtures by name: `from tests.bricks.gpu.tiny_editors import tiny_editors, editors_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bricks import Registry
from server.settings import Settings
from tests.conftest import Bricks

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>", "<think>", "</think>"]  # fmt: skip
# Qwen3's template, as far as Flux2KleinPipeline uses it: one user turn, and with
# enable_thinking=False an empty think block after the assistant header.
QWEN3_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
CORPUS = [
    (
        "Describe the key features of the input image (color, shape, size, texture, objects, background), then explain "
        "how the user's text instruction should alter or modify the image. Generate a new image that meets the user's "
        "requirements while maintaining consistency with the original input where appropriate."
    ),
    "Picture 1: Picture 2: Picture 3: system user assistant",
    "change the background to a beach at night; make it warmer; remove the dog; anime style; a photo of a cat",
]
TEXT = 32  # text-encoder width, so the transformers' joint_attention_dim
QWEN_EDIT_PLUS = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"


def build_tokenizer():
    """A Qwen2 byte-level BPE (~500 tokens) with Qwen's special tokens and a Qwen3-style chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS, trainer)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tok = Qwen2Tokenizer(vocab=bpe.get_vocab(), merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_tokens(SPECIAL, special_tokens=True)
    tok.chat_template = QWEN3_TEMPLATE
    return tok


def build_qwen_image_edit(out: Path) -> Path:
    """QwenImageEditPlusPipeline (the Qwen-Image-Edit-2509/2511 class) at `out`."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
    )

    from bricks.gpu.qwen import image_only_processor

    tok = build_tokenizer()
    ids = tok.convert_tokens_to_ids
    torch.manual_seed(0)
    # 2511 sets zero_cond_t: the reference images' tokens get timestep 0
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=TEXT, guidance_embeds=False, axes_dims_rope=(4, 6, 6), zero_cond_t=True,
    )  # fmt: skip
    # the real VAE's levels (x8, 16 latent channels, real latents_mean/std defaults), 8 channels wide
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True])
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": TEXT, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},  # sums to head_dim/2
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": None,
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "out_hidden_size": TEXT,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )  # fmt: skip
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    # the pipeline hands the VL encoder ~384x384 images; max_pixels caps them at 4x4 merged tokens each
    images = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = image_only_processor("Qwen2VLProcessor")(image_processor=images, tokenizer=tok)
    # Qwen-Image-Edit's scheduler config
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=0.5, max_image_seq_len=8192, max_shift=0.9, shift=1.0, shift_terminal=0.02,
        time_shift_type="exponential", use_dynamic_shifting=True,
    )  # fmt: skip
    QwenImageEditPlusPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tok, processor=processor, transformer=transformer,
    ).save_pretrained(out)  # fmt: skip
    # name the processor as the Hub repository does, not after the local subclass
    index = out / "model_index.json"
    meta = json.loads(index.read_text(encoding="utf-8"))
    meta["processor"] = ["transformers", "Qwen2VLProcessor"]
    index.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    config_file = out / "processor" / "processor_config.json"
    cfg = json.loads(config_file.read_text(encoding="utf-8"))
    cfg["processor_class"] = "Qwen2VLProcessor"
    config_file.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return out


def build_flux2_klein(out: Path, *, is_distilled: bool = True) -> Path:
    """Flux2KleinPipeline at `out`; distilled like FLUX.2-klein-4B unless told (the -base- ones are not)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(0)
    # the text embedding is 3 stacked hidden states, so joint_attention_dim = 3 x the encoder width
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=3 * TEXT, timestep_guidance_channels=256, mlp_ratio=3.0, axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )  # fmt: skip
    vae = AutoencoderKLFlux2(
        block_out_channels=(32,) * 4, layers_per_block=1, latent_channels=32, norm_num_groups=32, sample_size=64,
    )  # fmt: skip
    # 28 layers: the pipeline reads hidden states 9, 18 and 27 by default
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tok), hidden_size=TEXT, intermediate_size=64, num_hidden_layers=28, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=1024, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )).eval()  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096, max_shift=1.15, shift=3.0, use_dynamic_shifting=True,
    )  # fmt: skip
    Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tok, transformer=transformer, is_distilled=is_distilled,
    ).save_pretrained(out)  # fmt: skip
    return out


def small_qwen_references(monkeypatch: Any, area: int = 64 * 64) -> None:
    """QwenImageEditPlusPipeline resizes every reference image to ~1024x1024 for its VAE, whatever the
    output size (the module constant VAE_IMAGE_SIZE; about 5.7 s a call on the tiny model): shrink that area."""
    monkeypatch.setattr(f"{QWEN_EDIT_PLUS}.VAE_IMAGE_SIZE", area)


@dataclass(frozen=True)
class TinyEditors:
    qwen: Path
    klein: Path

    def toml(self, path: Path, *, steps: int = 2) -> Path:
        path.write_text(
            f'[runtime]\ndevice = "cpu"\nsteps = {steps}\n'
            f'[models.qwen_image_edit]\nid = "{self.qwen}"\n[models.flux2_klein]\nid = "{self.klein}"\n',
            encoding="utf-8",
        )
        return path


@pytest.fixture(scope="session")
def tiny_editors(tmp_path_factory: pytest.TempPathFactory) -> TinyEditors:
    root = tmp_path_factory.mktemp("tiny_editors")
    return TinyEditors(build_qwen_image_edit(root / "qwen"), build_flux2_klein(root / "klein"))


def editors_settings(tiny: TinyEditors, tmp_path: Path, **more: Any) -> Settings:
    """Settings whose model file names the tiny editors, CPU forced."""
    return Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", models_file=tiny.toml(tmp_path / "models.toml"), **more)


@pytest.fixture
def editors_run(tiny_editors: TinyEditors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bricks:
    small_qwen_references(monkeypatch)
    return Bricks(Registry.from_settings(editors_settings(tiny_editors, tmp_path)))
