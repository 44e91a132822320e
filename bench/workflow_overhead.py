"""Share of a workflow's time spent inside the bricks (target >= 95 %). Prints figures from one run.

A 5-step chain on a 1024x1024 photo, run as `run_workflow` runs it: every step goes through
the registry's one call path (validation, reference lookup, output checks; intermediates get
random ids, only the result a content hash), the whole chain in one worker thread. Each run
starts from a photo the store has not seen.
The time inside the brick functions is measured by wrapping them.

Run: .venv/bin/python bench/workflow_overhead.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np
from PIL import Image
from skimage import data

from bricks import Registry
from builder.editor import run_workflow
from server.settings import Settings

CHAIN = {"process": "five-step chain", "pipeline": [
    {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "contrast": 0.2, "warmth": 0.2}, "output": {"image": "step1[image]"}},
    {"step": 2, "model": "BRIGHT", "input": {"image": "step1[image]", "ratio": 0.55}, "output": {"image": "step2[image]"}},
    {"step": 3, "model": "FLUX-STYLE", "input": {"image": "step2[image]", "prompt": "an astronaut", "style": "sepia"}, "output": {"image": "step3[image]"}},
    {"step": 4, "model": "ADJUST", "input": {"image": "step3[image]", "sharpness": 0.5}, "output": {"image": "step4[image]"}},
    {"step": 5, "model": "RESIZE", "input": {"image": "step4[image]", "ratio": 1.2}, "output": {"image": "step5[image]"}},
    {"result": "[step5[image]]"}]}


def main(repeats: int = 10) -> None:
    registry = Registry.from_settings(Settings.load(cache_dir=Path(tempfile.mkdtemp(prefix="lego-bench-"))))
    inside = 0.0

    def timed(fn):
        def run(**kwargs):
            nonlocal inside
            t = time.perf_counter()
            try:
                return fn(**kwargs)
            finally:
                inside += time.perf_counter() - t
        return run

    for model in {step["model"] for step in CHAIN["pipeline"][:-1]}:
        brick = registry.get(model)
        fn, wants_ctx = brick.impl("cpu")
        brick._impls["cpu"] = (timed(fn), wants_ctx)  # a benchmark may reach inside

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC))

    async def measure() -> tuple[list[float], list[float]]:
        nonlocal inside
        await run_workflow(registry, CHAIN, registry.store.put(photo).uri)  # warm-up (imports, first calls)
        shares, totals = [], []
        for _ in range(repeats):
            # A new photo each run (one pixel differs), so no write is a duplicate of an earlier one.
            fresh = photo.copy()
            fresh[0, 0] = (len(totals) + 1) % 256
            uri = registry.store.put(fresh).uri
            inside = 0.0
            t = time.perf_counter()
            await run_workflow(registry, CHAIN, uri)
            total = time.perf_counter() - t
            shares.append(inside / total)
            totals.append(total)
        return shares, totals

    shares, totals = anyio.run(measure)
    print(f"5-step workflow on 1024x1024, median of {repeats}: total {statistics.median(totals) * 1000:.1f} ms, "
          f"inside bricks {statistics.median(shares) * 100:.1f} % (target >= 95 %)")


if __name__ == "__main__":
    main()
