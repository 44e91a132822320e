"""Acceptance: with tiny models configured and the CPU forced, `lego_edit` over MCP removes an
object with the GPU bricks RES -> FASTINPAINT (LaMa) -> FLUX-INPAINT, planned by the rules planner."""

import base64
import io

import numpy as np
import pytest
from mcp import Client
from PIL import Image

from bricks.gpu import segment
from server.app import LegoEditServer
from server.runtime import Runtime
from server.settings import Settings
from tests.bricks.gpu.tiny_flux import QUIET as FLUX_QUIET
from tests.bricks.gpu.tiny_flux import tiny_flux  # noqa: F401 - fixture
from tests.bricks.gpu.tiny_vision import tiny_models  # noqa: F401 - fixture
from tests.conftest import photo

pytestmark = [pytest.mark.anyio, *(pytest.mark.filterwarnings(w) for w in FLUX_QUIET)]


@pytest.fixture
def gpu_server(tiny_models, tiny_flux, tmp_path, monkeypatch) -> LegoEditServer:
    monkeypatch.setattr(segment, "BOX_THRESHOLD", 0.0)  # random weights: take Grounding DINO's best box
    models = tiny_flux.toml(tmp_path / "models.toml", steps=2)
    models.write_text(models.read_text() + "\n" + (tiny_models.parent / "sections.toml").read_text())
    settings = Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", models_file=models, builder="rules")
    return LegoEditServer(Runtime.from_settings(settings))


async def test_remove_the_cat_runs_res_fastinpaint_flux_inpaint(gpu_server, tmp_path):
    path = tmp_path / "cat.png"
    image = photo("chelsea")[::3, ::4][:96, :112]
    Image.fromarray(image).save(path)
    async with Client(gpu_server) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"segment_by_text", "fast_inpaint", "refine_removal"} <= tools
        result = await client.call_tool("lego_edit", {"image": str(path), "instruction": "remove the cat"})
        assert not result.is_error, result.content
        out = result.structured_content
        assert [s["model"] for s in out["workflow"]["pipeline"][:-1]] == ["RES", "FASTINPAINT", "FLUX-INPAINT"]
        assert out["attempts"][0]["planner"] == "rules" and out["attempts"][0]["error"] is None
        blob = (await client.read_resource(out["results"][0]["uri"])).contents[0].blob
    assert np.asarray(Image.open(io.BytesIO(base64.b64decode(blob)))).shape == (96, 112, 3)
    registry = gpu_server.registry
    assert [registry.backend_for(registry.get(b))[0] for b in ("RES", "FASTINPAINT", "FLUX-INPAINT")] == ["gpu"] * 3
