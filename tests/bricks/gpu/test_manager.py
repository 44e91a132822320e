"""The model manager and its configuration around the FLUX bricks: LoRA layouts, eviction,
config file and env, availability, MCP progress and cancellation."""

import re

import anyio
import numpy as np
import pytest

from bricks import Registry, SchemaError
from bricks.backends import accelerator
from bricks.gpu.config import ModelConfig
from bricks.gpu.diffusion import flux_fill_loader
from server.settings import Settings
from tests.bricks.gpu.tiny_flux import QUIET, flux_registry, tiny_flux  # noqa: F401 (fixture)

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET]

FLUX_BRICKS = ["generative_fill", "refine_removal", "change_environment", "change_pose", "recolor_material", "stylize"]


def image_and_mask(side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = np.zeros((side, side), np.uint8)
    mask[16:48, 16:48] = 255
    return image, mask


def test_loras_of_both_layouts_load_as_adapters_and_change_the_output(tiny_flux, tmp_path):
    from bricks.context import BrickContext
    from bricks.gpu.diffusion import generate

    ctx = BrickContext(flux_registry(tiny_flux, tmp_path).models)
    image, mask = image_and_mask()
    plain = generate(None, image, mask, "a hat", ctx, what="test")
    for key in ("lora_rcm", "lora_env"):  # kohya/ComfyUI layout, diffusers/PEFT layout
        assert not np.array_equal(generate(key, image, mask, "a hat", ctx, what="test"), plain)
    assert np.array_equal(generate(None, image, mask, "a hat", ctx, what="test"), plain)
    assert ctx.models.loads["flux_fill"] == 1


def test_the_least_recently_used_component_is_evicted_beyond_the_budget(tiny_flux, tmp_path):
    from diffusers import AutoencoderKL

    registry = flux_registry(tiny_flux, tmp_path, memory_budget_gb=1e-6)  # any two components overflow it
    image, mask = image_and_mask()
    args = {"image": registry.store.put(image).uri, "mask": registry.store.put(mask).uri, "prompt": "a hat"}
    anyio.run(registry.call, "generative_fill", args)
    anyio.run(registry.call, "recolor_material", args)  # an adapter on the shared base: no second component
    registry.models.load("flux_canny", lambda entry, device, dtype: AutoencoderKL.from_pretrained(tiny_flux.fill, subfolder="vae"))
    anyio.run(registry.call, "recolor_material", args)  # the base was evicted: reloaded, its adapter too
    loads = registry.models.loads
    assert (loads["flux_fill"], loads["lora_rcm"], loads["flux_canny"]) == (2, 2, 1)


def test_config_file_then_env_then_runtime_overrides(tiny_flux, tmp_path, monkeypatch):
    path = tiny_flux.toml(tmp_path / "models.toml", steps=3)
    monkeypatch.setenv("LEGO_EDIT_MODEL_LORA_ENV", str(tmp_path / "env_lora"))
    monkeypatch.setenv("LEGO_EDIT_MODEL_SAM", "")
    config = ModelConfig.load(path, ids=Settings().bricks.model, dtype="float32")
    assert (config.runtime.device, config.runtime.steps, config.runtime.dtype) == ("cpu", 3, "float32")
    assert config.entry("flux_fill").id == str(tiny_flux.fill) and config.configured(["flux_fill", "lora_rcm"])
    env_entry = config.entry("lora_env")
    assert (env_entry.id, env_entry.configured) == (str(tmp_path / "env_lora"), True)
    assert not config.configured(["sam"]) and config.entry("flux_canny").id == "black-forest-labs/FLUX.1-Canny-dev"
    defaults = ModelConfig.load()
    assert defaults.entry("lora_rcm").weight_name == "mat768.safetensors" and not defaults.configured(["flux_fill"])


@pytest.mark.parametrize(("table", "problem"), [
    ('steps = "many"', "steps: Input should be a valid integer"),
    ('dtype = "float8"', "dtype: Input should be 'auto', 'bfloat16', 'float16' or 'float32'"),
    ("offlaod = true", "offlaod: Extra inputs are not permitted"),
])
def test_a_bad_runtime_value_names_the_file_and_the_key(tmp_path, table, problem):
    path = tmp_path / "models.toml"
    path.write_text(f"[runtime]\n{table}\n")
    with pytest.raises(SchemaError, match=re.escape(problem)) as err:
        ModelConfig.load(path)
    assert str(path) in str(err.value)


@pytest.mark.skipif(accelerator() is not None, reason="checks the rules of a machine without a GPU")
def test_flux_bricks_are_unavailable_without_gpu_or_configured_cpu(tiny_flux, tmp_path):
    plain = Registry.from_settings(Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "c1"))
    for name in FLUX_BRICKS:
        backend, why = plain.backend_for(plain.get(name))
        if name in ("recolor_material", "stylize"):
            assert backend == "cpu"
        else:
            assert backend is None and "no GPU" in why
    forced = flux_registry(tiny_flux, tmp_path)
    assert all(forced.backend_for(forced.get(name))[0] == "gpu" for name in FLUX_BRICKS)
    partial = Registry.from_settings(Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "c2", device="cpu"))
    backend, why = partial.backend_for(partial.get("change_pose"))
    assert backend is None and "flux_fill, lora_pose" in why


@pytest.mark.anyio
async def test_per_step_progress_reaches_an_mcp_client(tiny_flux, tmp_path):
    from mcp import Client

    from server.app import LegoEditServer
    from server.runtime import Runtime

    runtime = Runtime.from_settings(flux_registry(tiny_flux, tmp_path, steps=3).settings)
    registry = runtime.registry
    image, mask = image_and_mask()
    seen = []

    async def on_progress(done, total, message):
        seen.append((done, total, message))

    args = {"image": registry.store.put(image).uri, "mask": registry.store.put(mask).uri, "prompt": "a hat"}
    async with Client(LegoEditServer(runtime)) as client:
        result = await client.call_tool("generative_fill", args, progress_callback=on_progress)
    assert not result.is_error
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert "denoising step 1 of 3" in seen[0][2]


@pytest.mark.anyio
async def test_a_cancelled_call_stops_within_one_step(tiny_flux, tmp_path):
    registry = flux_registry(tiny_flux, tmp_path, steps=8)
    image, mask = image_and_mask()
    args = {"image": registry.store.put(image).uri, "mask": registry.store.put(mask).uri, "prompt": "a hat"}
    transformer = registry.models.flux_fill(None, flux_fill_loader(registry.models)).transformer
    steps_run = []
    hook = transformer.register_forward_hook(lambda *_: steps_run.append(1))
    try:
        with anyio.CancelScope() as scope:

            async def cancel(done, total, message):
                scope.cancel()

            await registry.call("generative_fill", args, on_progress=cancel)
        assert scope.cancelled_caught and len(steps_run) == 1
        steps_run.clear()
        await registry.call("generative_fill", args)  # the device queue was released
        assert len(steps_run) == 8
    finally:
        hook.remove()
