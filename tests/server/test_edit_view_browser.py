"""The edit view in a real browser: headless Chromium renders it in a minimal web host of MCP Apps
(tests/server/apps_host: a host page and a sandbox proxy on another origin), whose tool calls and
resource reads go to a real client of a running HTTP server. A person's path: look at the edit,
paint a mask, re-run inside it, download the result. Screenshots of the main states are compared
with the committed ones (LEGO_EDIT_UPDATE_SCREENSHOTS=1 rewrites them)."""

import base64
import functools
import http.server
import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx2
import numpy as np
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from server.edit_view import VIEW_URI
from tests.server.test_edit_view import APPS, dump
from tests.server.test_transports import free_port, http_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
HOST_DIR = Path(__file__).parent / "apps_host"
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = os.environ.get("LEGO_EDIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
INSTRUCTION = "make it black and white"


@pytest.fixture(scope="module")
def browser_kit():
    playwright = pytest.importorskip("playwright.async_api", reason="Playwright is not installed: pip install -e '.[test]'")
    if CHROMIUM is None:
        pytest.skip("no Chromium to drive: apt-get install chromium (or set LEGO_EDIT_CHROMIUM to its path)")
    return playwright


@pytest.fixture
def host_pages() -> Iterator[tuple[str, str]]:
    """The host page and its sandbox proxy, served on two ports: two origins, as a web host has."""
    handler = functools.partial(_QuietHandler, directory=str(HOST_DIR))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    host, sandbox = (s.server_address[1] for s in servers)
    yield f"http://127.0.0.1:{host}/host.html", f"http://localhost:{sandbox}/sandbox.html"
    for s in servers:
        s.shutdown()
        s.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def pixels(data_or_blob: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_or_blob.split(",", 1)[-1]))).convert("RGB"))


def same_screen(name: str, shot: bytes) -> None:
    """The screenshot looks like the committed one: same size, under 1% of the pixels clearly different
    (times and fonts may move a few pixels; a lost image, panel or mask moves far more)."""
    path = SCREENSHOTS / f"{name}.png"
    if os.environ.get("LEGO_EDIT_UPDATE_SCREENSHOTS") == "1" or not path.exists():
        SCREENSHOTS.mkdir(exist_ok=True)
        path.write_bytes(shot)
        if os.environ.get("LEGO_EDIT_UPDATE_SCREENSHOTS") != "1":
            pytest.fail(f"no committed screenshot {path.name}: written now; look at it and commit it")
        return
    seen, kept = pixels(base64.b64encode(shot).decode()), np.asarray(Image.open(path).convert("RGB"))
    assert seen.shape == kept.shape, f"{name}: {seen.shape[1]}x{seen.shape[0]}, committed {kept.shape[1]}x{kept.shape[0]}"
    differ = (np.abs(seen.astype(int) - kept).max(-1) > 48).mean()
    assert differ < 0.01, f"{name}: {differ:.1%} of the screen differs from {path}"


async def test_paint_a_mask_rerun_and_download_in_chromium(browser_kit, host_pages, http_server, photo_file):  # noqa: F811
    host_url, sandbox_url = host_pages
    source = np.asarray(Image.open(photo_file).convert("RGB"))
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"}, timeout=60) as http:
        async with Client(streamable_http_client(http_server, http_client=http), mode="legacy", extensions=[APPS]) as client:
            # the model's call, whose result the host shows in the view
            args = {"image": str(photo_file), "instruction": INSTRUCTION}
            first = dump(await client.call_tool("lego_edit", args))
            html = (await client.read_resource(VIEW_URI)).contents[0].text

            async def mcp_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
                if method == "tools/call":
                    return dump(await client.call_tool(params["name"], params.get("arguments") or {}))
                return dump(await client.read_resource(params["uri"]))

            async with browser_kit.async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = await browser.new_page(viewport={"width": 760, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await page.expose_function("mcpRequest", mcp_request)
                await page.goto(f"{host_url}?sandbox={sandbox_url}")
                await page.evaluate("([h, a, r]) => host.show(h, a, r, 'lego_edit')", [html, args, first])
                view = page.frame_locator("#app").frame_locator("iframe")
                expect = browser_kit.expect

                # the edit as the model made it: before/after, its step, the planner's reasoning
                await expect(view.locator("body")).to_have_attribute("data-state", "ready")
                first_uri = first["structuredContent"]["results"][0]["uri"]
                await expect(view.locator("#after")).to_have_attribute("data-uri", first_uri)
                await expect(view.locator("#instruction")).to_have_value(INSTRUCTION)
                await expect(view.locator("#steps li")).to_have_count(1)
                await expect(view.locator("#steps li .brick")).to_have_text("1. adjust")
                await expect(view.locator("#reasoning")).to_contain_text("saturation")
                same_screen("result", await page.screenshot(full_page=True))
                await view.locator("#split").fill("20")  # the slider shows more of the edit

                # paint the left half of the cat's face, then erase a dab inside it
                await view.locator("#paint").click()
                box = await view.locator("#mask").bounding_box()
                for y in np.linspace(0.25, 0.6, 8):
                    await page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + y * box["height"])
                    await page.mouse.down()
                    await page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + y * box["height"], steps=6)
                    await page.mouse.up()
                await view.locator("#eraser").click()
                erased = (box["x"] + 0.32 * box["width"], box["y"] + 0.42 * box["height"])
                await page.mouse.click(*erased)
                await expect(view.locator("#mask-note")).to_contain_text("% of the image")
                same_screen("paint", await page.screenshot(full_page=True))

                # re-run inside the mask: the host calls lego_edit with the painted mask
                await view.locator("#rerun").click()
                await expect(view.locator("#after")).not_to_have_attribute("data-uri", first_uri)
                await expect(view.locator("body")).to_have_attribute("data-state", "ready")
                same_screen("rerun", await page.screenshot(full_page=True))
                call = next(c for c in reversed(await page.evaluate("window.calls")) if c["method"] == "tools/call")
                second_uri = await view.locator("#after").get_attribute("data-uri")

                await view.locator("#download").click()
                await page.wait_for_function("window.downloads.length > 0")
                downloads = await page.evaluate("window.downloads")
                await browser.close()
            second = pixels((await client.read_resource(second_uri)).contents[0].blob)

    assert not errors, errors
    sent = call["params"]["arguments"]
    assert sent["instruction"] == INSTRUCTION and sent["image"] == first["_meta"]["lego-edit/view"]["source"]["uri"]
    mask = pixels(sent["mask"])[..., 0] > 127
    h, w = mask.shape
    assert (h, w) == source.shape[:2]  # painted at the photo's own size, whatever it was shown at
    assert mask[int(0.42 * h), int(0.25 * w)] and not mask[int(0.42 * h), int(0.32 * w)]  # brushed; erased
    assert not mask[int(0.9 * h), int(0.9 * w)] and 0.03 < mask.mean() < 0.15
    # the result changed only inside the mask: the photo's own pixels outside, grey inside (past the
    # ~10 px along the mask's edge where ADJUST fades its change in)
    assert np.array_equal(second[~mask], source[~mask])
    inside = cv2.erode(mask.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    spread = second.max(-1).astype(int) - second.min(-1)
    assert inside.sum() > 1000 and (spread[inside] <= 2).mean() > 0.99 and (spread[~mask] > 10).mean() > 0.3
    # the download is the full-resolution result
    assert len(downloads) == 1
    (item,) = downloads[0]["contents"]
    assert item["resource"]["mimeType"] == "image/png" and item["resource"]["uri"].endswith(".png")
    assert np.array_equal(pixels(item["resource"]["blob"]), second)
