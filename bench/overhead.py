"""What the registry and the MCP server cost on top of the work. Prints ratios measured in one run.

(a) a trivial brick (BBOX on a 64x64 mask): the function alone, through `Registry.call`, and
    through the server in memory and over stdio, each against a bare SDK tool doing the same work;
(b) ADJUST on a 1024x1024 photo: by reference against the bare tool, and by reference against
    inline base64 (a data URI the server must decode);
(c) a chain of three bricks on the 1024x1024 photo, by reference, against the functions alone.

Run: .venv/bin/python bench/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np
from mcp import Client, StdioServerParameters
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bare_server import bare_server  # noqa: E402

from bricks.cpu.masks import bbox  # noqa: E402
from server.app import LegoEditServer  # noqa: E402
from server.runtime import Runtime  # noqa: E402
from server.settings import Settings  # noqa: E402


async def compare(ours, base, n: int) -> tuple[float, float]:
    """Median milliseconds of two callables, run alternately so that machine noise hits both alike."""
    await ours()  # warm-up
    await base()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for fn, bucket in ((ours, times[0]), (base, times[1])):
            t = time.perf_counter()
            await fn()
            bucket.append(time.perf_counter() - t)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def sync(fn):
    async def run():
        fn()

    return run


def call(client: Client, tool: str, args: dict):
    async def run():
        result = await client.call_tool(tool, args)
        assert not result.is_error, result.content

    return run


async def main(quick: bool) -> None:
    n_small, n_big = (30, 3) if quick else (300, 30)
    cache = Path(tempfile.mkdtemp(prefix="lego-bench-"))
    settings = Settings.load(cache_dir=cache, allowed_roots=(cache,))
    runtime = Runtime.from_settings(settings)
    registry = runtime.registry
    store = registry.store

    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:30] = 255
    mask_uri = store.put(mask).uri
    from skimage import data

    big = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC))
    big_uri = store.put(big).uri
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    big_data_uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    store.flush()  # the stdio servers read these from the shared cache

    def row(label: str, ours: float, base: float) -> None:
        print(f"{label:<58} {ours:9.3f} ms  vs {base:9.3f} ms  ratio {ours / base:5.2f}x", flush=True)

    print(f"(a) trivial brick, BBOX 64x64, median of {n_small}")
    row("Registry.call vs the function (+ store)", *await compare(
        lambda: registry.call("BBOX", {"mask": mask_uri}), sync(lambda: store.put(bbox(mask)["mask"])), n_small))
    ours, bare = LegoEditServer(runtime), bare_server(registry, settings)
    async with Client(ours) as c_ours, Client(bare) as c_bare:
        row("in-memory server vs bare SDK tool", *await compare(
            call(c_ours, "mask_to_box", {"mask": mask_uri}), call(c_bare, "bare_bbox", {"mask": mask_uri}), n_small))
        print(f"(b) ADJUST 1024x1024, median of {n_big}")
        by_ref = call(c_ours, "adjust", {"image": big_uri, "saturation": 0.3})
        row("in-memory server vs bare SDK tool, by reference", *await compare(
            by_ref, call(c_bare, "bare_adjust", {"image": big_uri, "saturation": 0.3}), n_big))
        row("in-memory server: inline base64 vs by reference", *await compare(
            call(c_ours, "adjust", {"image": big_data_uri, "saturation": 0.3}), by_ref, n_big))

        print(f"(c) chain of three bricks on 1024x1024 by reference, median of {n_big}")

        async def chain():
            r = await c_ours.call_tool("adjust", {"image": big_uri, "contrast": 0.2})
            r = await c_ours.call_tool("brightness", {"image": r.structured_content["image"]["uri"], "ratio": 0.6})
            r = await c_ours.call_tool("stylize", {"image": r.structured_content["image"]["uri"], "prompt": "", "style": "sepia"})
            assert not r.is_error

        async def chain_direct():
            def work():
                from bricks.cpu import style, tone

                a = registry.get("adjust")
                args = {p.name: p.default for p in a.spec.inputs} | {"image": big, "contrast": 0.2}
                img = store.put(tone.adjust(**args)["image"])
                img = store.put(tone.brightness(image=store.get(img.id), ratio=0.6)["image"])
                store.put(style.stylize(image=store.get(img.id), mask=None, prompt="", style="sepia")["image"])

            await anyio.to_thread.run_sync(work)

        row("3-brick chain through MCP vs the functions (+ store)", *await compare(chain, chain_direct, n_big))

    py = sys.executable
    for label, args, tool, targs, n in (
        ("stdio: BBOX", ["-m", "server", "serve", "--cache-dir", str(cache)], "mask_to_box", {"mask": mask_uri}, n_small),
        ("stdio: ADJUST 1024x1024 by reference", ["-m", "server", "serve", "--cache-dir", str(cache)], "adjust", {"image": big_uri, "saturation": 0.3}, n_big),
    ):
        bare_tool = "bare_bbox" if tool == "mask_to_box" else "bare_adjust"
        root = str(Path(__file__).resolve().parent.parent)
        async with (
            Client(StdioServerParameters(command=py, args=args, cwd=root)) as c_ours,
            Client(StdioServerParameters(command=py, args=["bench/bare_server.py", str(cache)], cwd=root)) as c_bare,
        ):
            row(f"{label}, server vs bare SDK tool", *await compare(call(c_ours, tool, targs), call(c_bare, bare_tool, targs), n))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    anyio.run(main, parser.parse_args().quick)
