"""The MCP Inspector CLI as a real third-party client: strict schema lint, a call, a resource read.

Each Inspector invocation starts a fresh server process, so reading the result of the call
in the next process also checks that stored images outlive the server (flushed at exit).
"""

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.runtime import SERVER_TOOLS

pytestmark = pytest.mark.slow

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"  # --strict needs 2.x; its CLI runs on Node 20


@pytest.fixture(scope="session")
def inspector() -> Path:
    """The Inspector CLI, installed once into a cache folder (npm registry only, no model hub)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    prefix = Path(os.environ.get("LEGO_EDIT_INSPECTOR_DIR", Path.home() / ".cache" / "lego-edit-mcp" / "inspector-2.12.0"))
    binary = prefix / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-fund", "--no-audit", "--loglevel=error", INSPECTOR],
            check=True, capture_output=True, timeout=600,
        )
    return binary


def run_inspector(inspector: Path, settings, *method: str) -> subprocess.CompletedProcess:
    env = [f"LEGO_EDIT_ALLOWED_ROOTS={settings.allowed_roots[0]}", f"LEGO_EDIT_CACHE_DIR={settings.cache_dir}"]
    cmd = [str(inspector), "--cli", *(x for e in env for x in ("-e", e)), sys.executable, "-m", "server", "serve", *method]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=settings.allowed_roots[0])


def test_inspector_lists_strictly_calls_and_reads(inspector, settings, photo_file, registry):
    listed = run_inspector(inspector, settings, "--method", "tools/list", "--strict")
    assert listed.returncode == 0, listed.stderr
    assert "portability" not in listed.stderr.lower()
    names = {t["name"] for t in json.loads(listed.stdout)["tools"]}
    assert names == {b.name for b in registry.available()} | set(SERVER_TOOLS)

    called = run_inspector(
        inspector, settings, "--method", "tools/call", "--tool-name", "adjust",
        "--tool-arg", f"image={photo_file.name}", "--tool-arg", "saturation=-1",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["isError"] is False
    uri = result["structuredContent"]["image"]["uri"]

    read = run_inspector(inspector, settings, "--method", "resources/read", "--uri", uri)
    assert read.returncode == 0, read.stderr
    (contents,) = json.loads(read.stdout)["contents"]
    grey = np.asarray(Image.open(io.BytesIO(base64.b64decode(contents["blob"]))))
    assert grey.shape == (300, 451, 3)
    assert (grey.max(axis=2).astype(int) - grey.min(axis=2)).max() <= 1  # saturation -1: grey


def test_inspector_gets_lego_edit_answered_in_full_not_as_a_task(inspector, settings, photo_file):
    """Inspector 2.12.0 lists the tasks extension among its capabilities, yet its CLI asks for no
    task on the call (no `task` parameter, no extension in the request's capabilities): the
    server answers as before, with the whole result."""
    called = run_inspector(
        inspector, settings, "--method", "tools/call", "--tool-name", "lego_edit",
        "--tool-arg", f"image={photo_file.name}", "--tool-arg", "instruction=make it warmer",
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["isError"] is False and result.get("resultType", "complete") == "complete"
    assert result["structuredContent"]["workflow"]["pipeline"][0]["model"] == "ADJUST"
