"""bench/gpu_check.py --dry-run: the GPU check's own code, on a tiny config on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_dry_run_measures_every_section(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first-block cache" in done.stdout and "LoRA switch" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["setup"]["device"] == "cpu" and figures["transformer"]["finite"]
    assert figures["transformer"]["step_s"] > 0 and figures["pipeline"]["steps"] == figures["setup"]["steps"]
    lora = figures["lora"]
    assert len(lora["load_s"]) == 2 and lora["switch_s"] > 0 and lora["hotswap_s"] is not None
    cache = figures["cache"]["first_block_cache_always_skip"]
    assert cache["steps_computed"] == 1  # only the first step runs every block
    assert figures["fp8"]["weights_gb"] > 0
