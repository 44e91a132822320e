"""Tiny random-weight models of the segmentation, placement, caption and LaMa bricks.

Each is built from a narrow config of the real architecture (tokenizers built here), saved to a
temp dir with `save_pretrained` (LaMa: a `torch.jit.script`ed conv net with LaMa's call
signature) and named in a models TOML, so the bricks load them through the real manager code
on the CPU. The Builder is the tiny Qwen2.5-VL of `tests.builder.conftest`.

Import the fixtures by name: `from tests.bricks.gpu.tiny_vision import gpu, gpu_registry, tiny_models`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bricks import Registry
from server.settings import Settings
from tests.builder.conftest import build_tiny_builder
from tests.conftest import Bricks

SIDE = 128  # the vision models' input side: small, and a multiple of every patch size used
WORDS = [
    "a", "an", "the", "cat", "dog", "car", "boat", "hat", "object", "on", "in", "left", "right", "of", "red", "black",
    "small", "big", "lake", "photo", "main",
]  # fmt: skip


def build_grounding(out: Path) -> Path:
    """Grounding DINO: a 4-stage Swin backbone 8 channels wide, a 1-layer BERT, 10 queries."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS, *letters, *(f"##{c}" for c in letters)]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(image_size=SIDE, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                   window_size=2, out_indices=[2, 3, 4]),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32,
    )  # fmt: skip
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(out)
    images = GroundingDinoImageProcessor(size={"shortest_edge": SIDE, "longest_edge": SIDE})
    GroundingDinoProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    return out


def _sam_parts(hq: bool) -> tuple[object, object]:
    from transformers import SamConfig, SamHQConfig, SamHQModel, SamModel

    vision = {"hidden_size": 32, "output_channels": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": SIDE, "patch_size": 16, "window_size": 4, "global_attn_indexes": [1], "mlp_dim": 64,
              "num_pos_feats": 16}  # fmt: skip
    prompt = {"hidden_size": 32, "image_size": SIDE, "patch_size": 16, "mask_input_channels": 4}
    decoder = {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32}
    if hq:
        decoder["vit_dim"] = 32
        return SamHQModel, SamHQConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    return SamModel, SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def build_sam(out: Path, *, hq: bool = False) -> Path:
    """SAM (or SAM-HQ): a 2-layer ViT 32 wide at 128 px, the real prompt encoder and mask decoder, narrow."""
    import torch
    from transformers import SamHQProcessor, SamImageProcessor, SamProcessor

    model_class, config = _sam_parts(hq)
    torch.manual_seed(1)
    model_class(config).save_pretrained(out)
    images = SamImageProcessor(size={"longest_edge": SIDE}, pad_size={"height": SIDE, "width": SIDE})
    (SamHQProcessor if hq else SamProcessor)(image_processor=images).save_pretrained(out)
    return out


def build_clipseg(out: Path) -> Path:
    """CLIPSeg: 2-layer CLIP text and vision towers 32 wide; a byte-level CLIP tokenizer without merges."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        CLIPTokenizer,
        ViTImageProcessor,
    )

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = [*symbols, *(f"{s}</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[], model_max_length=32)
    config = CLIPSegConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32,
                     "bos_token_id": len(vocab) - 2, "eos_token_id": len(vocab) - 1, "pad_token_id": len(vocab) - 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 3, "num_attention_heads": 2,
                       "image_size": SIDE, "patch_size": 16},
        projection_dim=32, extract_layers=[1, 2], reduce_dim=16,
    )  # fmt: skip
    torch.manual_seed(2)
    CLIPSegForImageSegmentation(config).save_pretrained(out)
    images = ViTImageProcessor(size={"height": SIDE, "width": SIDE}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    CLIPSegProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    return out


def build_lama(path: Path) -> Path:
    """A scripted 3x3 conv net called like big-lama's TorchScript: (image [1,3,H,W] 0..1, mask [1,1,H,W]) -> image."""
    import torch

    class TinyLama(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            if image.shape[2] % 8 != 0 or image.shape[3] % 8 != 0:
                raise ValueError("LaMa needs sides that are multiples of 8")
            return torch.sigmoid(self.conv(torch.cat([image * (1 - mask), mask], dim=1)))

    torch.manual_seed(3)
    with warnings.catch_warnings():  # TorchScript is deprecated in torch, but it is the format LaMa ships in
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(TinyLama()).save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models TOML (device cpu) naming every tiny model of this module; `sections.toml` beside
    it holds the same model entries without the [runtime] table."""
    root = tmp_path_factory.mktemp("tiny-vision")
    text_registry = Registry.from_settings(Settings(cache_dir=root / "cache", backend="cpu"))
    build_tiny_builder(root, text_registry)
    paths = {
        "grounding": build_grounding(root / "grounding"),
        "sam": build_sam(root / "sam"),
        "salient": build_sam(root / "sam-hq", hq=True),
        "clipseg": build_clipseg(root / "clipseg"),
        "lama": build_lama(root / "big-lama.pt"),
    }
    sections = [f'[models.builder]\nid = "{root}"\nsubfolder = "Builder"\n']
    sections += [f'[models.{key}]\nid = "{path}"\n' for key, path in paths.items()]
    (root / "sections.toml").write_text("\n".join(sections), encoding="utf-8")  # for combining with other model files
    toml = root / "models.toml"
    toml.write_text('[runtime]\ndevice = "cpu"\n\n' + "\n".join(sections), encoding="utf-8")
    return toml


@pytest.fixture(scope="session")
def gpu_registry(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Registry:
    """The real registry with the tiny models configured on the CPU, so the GPU backends run."""
    root = tmp_path_factory.mktemp("gpu-registry")
    return Registry.from_settings(Settings(allowed_roots=(root,), cache_dir=root / "cache", models_file=tiny_models))


@pytest.fixture
def gpu_here(gpu_registry: Registry) -> Bricks:
    """Call bricks through `gpu_registry` (its models stay loaded between tests), for tests that
    patch the bricks' modules or models in this process."""
    return Bricks(gpu_registry)


@pytest.fixture(params=["here", pytest.param("ray", marks=pytest.mark.slow)])
def gpu(request: pytest.FixtureRequest, gpu_registry: Registry) -> Bricks:
    """`gpu_here`, and the same bricks computed in Ray Serve deployments of the tiny models."""
    if request.param == "ray":
        from tests.ray_cluster import through_ray

        return Bricks(through_ray(request, gpu_registry.settings))
    return Bricks(gpu_registry)
