"""RES, SOS and MASK-SEG on their GPU backends, with tiny models on the CPU, through Registry.call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bricks import InvalidInput
from bricks.gpu import segment
from bricks.gpu.manager import ModelManager
from tests.bricks.gpu.tiny_vision import gpu, gpu_here, gpu_registry, tiny_models  # noqa: F401 - fixtures
from tests.conftest import photo


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return photo("chelsea")[::3, ::4][:96, :112]  # 96x112 keeps the cat


def _check(out: dict, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    assert out["mask"].shape == (h, w) and set(np.unique(out["mask"])) <= {0, 255}
    assert out["image"].shape == (h, w, 4)
    assert (out["image"][..., :3] == image).all() and (out["image"][..., 3] == out["mask"]).all()


def test_gpu_backends_are_chosen(gpu_registry):
    for name in ("segment_by_text", "segment_salient", "refine_mask"):
        assert gpu_registry.backend_for(gpu_registry.get(name)) == ("gpu", "")


def test_res_grounds_the_phrase_then_cuts_the_box_with_sam(gpu_here, cat, monkeypatch):
    monkeypatch.setattr(segment, "BOX_THRESHOLD", 0.0)  # random weights: any box will do
    out = gpu_here("segment_by_text", image=cat, prompt="the cat on the left")
    _check(out, cat)
    assert out["mask"].any()


def test_res_finding_nothing_names_the_prompt(gpu_here, cat, monkeypatch):
    monkeypatch.setattr(segment, "BOX_THRESHOLD", 1.01)
    with pytest.raises(InvalidInput) as err:
        gpu_here("segment_by_text", image=cat, prompt="a red boat")
    assert err.value.param == "prompt" and "a red boat" in str(err.value)


def test_res_clipseg_option(gpu_here, gpu_registry, cat, monkeypatch):
    from dataclasses import replace

    config = gpu_registry.model_config
    monkeypatch.setattr(gpu_registry, "models", ModelManager(replace(config, runtime=config.runtime.model_copy(update={"res_model": "clipseg"}))))
    monkeypatch.setattr(segment, "CLIPSEG_THRESHOLD", 0.5)
    _check(gpu_here("segment_by_text", image=cat, prompt="the cat"), cat)


def test_sos_picks_a_salient_candidate(gpu_here, cat, monkeypatch):
    out = gpu_here("segment_salient", image=cat)
    _check(out, cat)
    assert 0 < (out["mask"] > 0).mean() <= segment.MAX_AREA + 0.05


def test_mask_seg_stays_in_the_rough_box(gpu, cat):
    rough = np.zeros(cat.shape[:2], np.uint8)
    rough[20:70, 30:90] = 255
    out = gpu("refine_mask", image=cat, mask=rough)
    _check(out, cat)
    inside = np.zeros(cat.shape[:2], bool)
    inside[20:70, 30:90] = True
    assert out["mask"].any() and not out["mask"][~inside].any()


@pytest.mark.parametrize("res_model, configured, missing", [
    ("clipseg", ["clipseg"], None),
    ("grounded_sam", ["clipseg"], "grounding, sam"),
    ("grounded_sam", ["grounding", "sam"], None),
    ("clipseg", ["grounding", "sam"], "clipseg"),
])  # fmt: skip
def test_res_needs_only_the_models_of_its_chosen_option(tmp_path, res_model, configured, missing):
    from bricks.backends import unavailable_reason
    from bricks.gpu.config import ModelConfig
    from bricks.spec import load_spec

    models = "".join(f'[models.{k}]\nid = "{tmp_path / k}"\n' for k in configured)
    (tmp_path / "models.toml").write_text(f'[runtime]\ndevice = "cpu"\nres_model = "{res_model}"\n{models}')
    config = ModelConfig.load(tmp_path / "models.toml")
    spec = load_spec(Path(segment.__file__).parents[2] / "schemas" / "segment_by_text.json")
    reason = unavailable_reason(spec, "gpu", "auto", config)
    assert reason is None if missing is None else reason.endswith(f"not configured: {missing}")
