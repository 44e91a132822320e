"""Tiny random-weight FLUX Control (Canny) and FLUX Kontext pipelines, saved to temp dirs.

They share the VAE, text encoders, tokenizers and scheduler of the tiny FLUX Fill pipeline
(tests/bricks/gpu/tiny_flux.py) and differ in the transformer's input width, as the real
checkpoints do: 128 for Control (64 packed latent + 64 packed control image), 64 for Kontext
(the reference image's tokens are appended along the sequence, not the channels).

Import the fixtures by name: `from tests.bricks.gpu.tiny_flux_control import tiny_flux_control, control_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bricks import Registry
from server.settings import Settings
from tests.bricks.gpu.tiny_flux import QUIET as FILL_QUIET
from tests.bricks.gpu.tiny_flux import TinyFlux, tiny_flux  # noqa: F401 - fixture
from tests.conftest import Bricks

QUIET = FILL_QUIET


def _transformer(in_channels: int):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1, in_channels=in_channels, out_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 4, 8),
    )  # fmt: skip


def build(fill: Path, root: Path) -> tuple[Path, Path]:
    import torch
    from diffusers import FluxControlPipeline, FluxFillPipeline, FluxKontextPipeline

    shared = {k: v for k, v in FluxFillPipeline.from_pretrained(fill).components.items() if k != "transformer"}
    torch.manual_seed(1)
    FluxControlPipeline(transformer=_transformer(128), **shared).save_pretrained(root / "canny")
    FluxKontextPipeline(transformer=_transformer(64), image_encoder=None, feature_extractor=None, **shared).save_pretrained(root / "kontext")
    return root / "canny", root / "kontext"


@pytest.fixture(scope="session")
def tiny_flux_control(tiny_flux: TinyFlux, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(canny pipeline dir, kontext pipeline dir)."""
    return build(tiny_flux.fill, tmp_path_factory.mktemp("tiny_flux_control"))


def control_settings(dirs: tuple[Path, Path], tmp_path: Path, *, steps: int = 2, runtime: str = "") -> Settings:
    """Settings with the tiny Canny and Kontext models, CPU forced; `runtime`: more lines for the
    [runtime] table. (A registry of them has a fresh model manager.)"""
    canny, kontext = dirs
    toml = tmp_path / "models.toml"
    toml.write_text(
        f'[runtime]\ndevice = "cpu"\nsteps = {steps}\n{runtime}\n'
        f'[models.flux_canny]\nid = "{canny}"\n[models.flux_kontext]\nid = "{kontext}"\n',
        encoding="utf-8",
    )
    return Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", models_file=toml)


def control_registry(dirs: tuple[Path, Path], tmp_path: Path, **more: Any) -> Registry:
    return Registry.from_settings(control_settings(dirs, tmp_path, **more))


@pytest.fixture(params=["here", pytest.param("ray", marks=pytest.mark.slow)])
def control_run(request: pytest.FixtureRequest, tiny_flux_control: tuple[Path, Path], tmp_path: Path) -> Bricks:
    """Call bricks on the tiny Canny and Kontext models, computed here and in a Ray Serve deployment."""
    if request.param == "ray":
        from tests.ray_cluster import through_ray

        return Bricks(through_ray(request, control_settings(tiny_flux_control, tmp_path)))
    return Bricks(control_registry(tiny_flux_control, tmp_path))
