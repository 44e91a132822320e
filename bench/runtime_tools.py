"""Tools added at run time: what a composite costs over the same workflow, and how soon a schema
file dropped into a watched directory reaches a connected client. Prints figures from one run.

Run: .venv/bin/python bench/runtime_tools.py
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from skimage import data

from server.app import LegoEditServer
from server.runtime import Runtime
from server.settings import Settings

EXAMPLES = Path(__file__).parents[1] / "examples"
ROUNDS = 9


async def main() -> None:
    root = Path(tempfile.mkdtemp())
    watched = root / "watched"
    watched.mkdir()
    settings = Settings(allowed_roots=(root,), cache_dir=root / "cache", state_dir=root / "state", backend="cpu",
                        schema_dirs=(watched,), watch_interval=0.1)  # fmt: skip
    server = LegoEditServer(Runtime.from_settings(settings))
    definition = json.loads((EXAMPLES / "composite" / "color_pop.json").read_text())
    workflow = {"process": "colour pop", "pipeline": [*definition["composite"]["pipeline"], {"result": "[step3[image]]"}]}
    workflow = json.loads(json.dumps(workflow).replace('"init[saturation]"', "-1.0"))
    image = server.registry.store.put(data.astronaut()).uri  # 512x512

    async with Client(server) as client:
        assert not (await client.call_tool("register_tool", {"definition": definition})).is_error
        as_composite, as_workflow = [], []
        for _ in range(ROUNDS):  # alternate, so drift on a busy machine hits both alike
            t = time.perf_counter()
            result = await client.call_tool("color_pop", {"image": image})
            as_composite.append(time.perf_counter() - t)
            assert not result.is_error, result.content
            t = time.perf_counter()
            result = await client.call_tool("run_workflow", {"workflow": workflow, "image": image})
            as_workflow.append(time.perf_counter() - t)
            assert not result.is_error, result.content
        c, w = statistics.median(as_composite), statistics.median(as_workflow)
        print(f"color_pop on 512x512, median of {ROUNDS}: composite {c * 1000:.1f} ms, "
              f"same workflow by run_workflow {w * 1000:.1f} ms, ratio {c / w:.2f}")  # fmt: skip

        delays = []
        shutil.copy(EXAMPLES / "schemas" / "vignette.py", watched)
        await anyio.sleep(0.3)
        for i in range(5):
            spec = json.loads((EXAMPLES / "schemas" / "vignette.json").read_text())
            spec |= {"name": f"vignette_{i}", "builder_id": f"VIGNETTE-{i}"}
            t = time.perf_counter()
            (watched / f"vignette_{i}.json").write_text(json.dumps(spec))
            while f"vignette_{i}" not in {tool.name for tool in (await client.list_tools()).tools}:
                await anyio.sleep(0.005)
            delays.append(time.perf_counter() - t)
        print(f"schema file dropped -> listed, watch interval 0.1 s: median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
