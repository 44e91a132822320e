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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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
    """The view's screenshot (of its frame: Chromium leaves a cross-origin frame out of full-page shots) looks like the committed one: same size, under 1% of the pixels clearly different
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


@asynccontextmanager
async def apps_client(url: str) -> AsyncIterator[Client]:
    """A client of the running server, as an Apps host has (the handshake generation, as today's hosts)."""
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy", extensions=[APPS]) as client:
            yield client


@asynccontextmanager
async def view_in_host(kit: Any, pages: tuple[str, str], client: Client, tool: str, args: dict[str, Any], result: dict[str, Any]):
    """Chromium showing the view of one call (`tool` with `args` gave `result`) in the test host,
    whose tool calls and reads go through `client`. Yields the page, the view's frame and the page's errors."""
    host_url, sandbox_url = pages
    html = (await client.read_resource(VIEW_URI)).contents[0].text

    async def mcp_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "tools/call":
            return dump(await client.call_tool(params["name"], params.get("arguments") or {}))
        return dump(await client.read_resource(params["uri"]))

    async with kit.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 760, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.expose_function("mcpRequest", mcp_request)
        await page.goto(f"{host_url}?sandbox={sandbox_url}")
        await page.evaluate("([h, t, a, r]) => host.show(h, a, r, t)", [html, tool, args, result])
        try:
            yield page, page.frame_locator("#app").frame_locator("iframe"), errors
        finally:
            await browser.close()


async def test_paint_a_mask_rerun_and_download_in_chromium(browser_kit, host_pages, http_server, photo_file):  # noqa: F811
    source = np.asarray(Image.open(photo_file).convert("RGB"))
    expect = browser_kit.expect
    async with apps_client(http_server) as client:
        args = {"image": str(photo_file), "instruction": INSTRUCTION}
        first = dump(await client.call_tool("lego_edit", args))  # the model's call, whose result the host shows
        async with view_in_host(browser_kit, host_pages, client, "lego_edit", args, first) as (page, view, errors):
            # the edit as the model made it: before/after, its step, the planner's reasoning
            await expect(view.locator("body")).to_have_attribute("data-state", "ready")
            first_uri = first["structuredContent"]["results"][0]["uri"]
            await expect(view.locator("#after")).to_have_attribute("data-uri", first_uri)
            await expect(view.locator("#instruction")).to_have_value(INSTRUCTION)
            await expect(view.locator("#steps li")).to_have_count(1)
            await expect(view.locator("#steps li .brick")).to_have_text("1. adjust")
            await expect(view.locator("#reasoning")).to_contain_text("saturation")
            same_screen("result", await page.locator("#app").screenshot())
            await view.locator("#split").fill("20")  # the slider shows more of the edit

            # paint over the cat's left eye, then erase a dab inside it
            await view.locator("#paint").click()
            box = await view.locator("#mask").bounding_box()
            for y in np.linspace(0.25, 0.6, 8):
                await page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + y * box["height"])
                await page.mouse.down()
                await page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + y * box["height"], steps=6)
                await page.mouse.up()
            await view.locator("#eraser").click()
            await page.mouse.click(box["x"] + 0.32 * box["width"], box["y"] + 0.42 * box["height"])
            await expect(view.locator("#mask-note")).to_contain_text("% of the image")
            same_screen("paint", await page.locator("#app").screenshot())

            # re-run inside the mask: the host calls lego_edit with the painted mask
            await view.locator("#rerun").click()
            await expect(view.locator("#after")).not_to_have_attribute("data-uri", first_uri, timeout=30_000)
            await expect(view.locator("body")).to_have_attribute("data-state", "ready")
            same_screen("rerun", await page.locator("#app").screenshot())
            call = next(c for c in reversed(await page.evaluate("window.calls")) if c["method"] == "tools/call")
            second_uri = await view.locator("#after").get_attribute("data-uri")

            await view.locator("#download").click()
            await page.wait_for_function("window.downloads.length > 0")
            downloads = await page.evaluate("window.downloads")
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


async def test_a_brick_result_and_an_error_in_chromium(browser_kit, host_pages, http_server, photo_file):  # noqa: F811
    expect = browser_kit.expect
    async with apps_client(http_server) as client:
        stored = dump(await client.call_tool("adjust", {"image": str(photo_file), "warmth": 0.0}))["structuredContent"]["image"]["uri"]
        args = {"image": stored}
        result = dump(await client.call_tool("segment_salient", args))
        async with view_in_host(browser_kit, host_pages, client, "segment_salient", args, result) as (page, view, errors):
            # a brick's image output beside the stored image it was given; no workflow, no reasoning
            await expect(view.locator("body")).to_have_attribute("data-state", "ready")
            await expect(view.locator("#after")).to_have_attribute("data-uri", result["structuredContent"]["mask"]["uri"])
            await expect(view.locator("#status")).to_have_text("segment_salient")
            await expect(view.locator("#steps-box")).to_be_hidden()
            await expect(view.locator("#reasoning-box")).to_be_hidden()
            same_screen("brick", await page.locator("#app").screenshot())
            # a re-run the CPU bricks cannot do is shown as the error it is, the last result kept
            await view.locator("#instruction").fill("add a red scarf to the cat")
            await view.locator("#rerun").click()
            await expect(view.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
            await expect(view.locator("#status")).to_contain_text("cannot plan 'add a red scarf to the cat'")
            same_screen("error", await page.locator("#app").screenshot())
            await expect(view.locator("#after")).to_have_attribute("data-uri", result["structuredContent"]["mask"]["uri"])
    assert not errors, errors


async def test_judge_scores_of_every_attempt_in_chromium(browser_kit, host_pages, http_server, photo_file):  # noqa: F811
    """Scores as a judge writes them (here set on a real result: the CPU default has no judge)."""
    from builder.judges.base import Verdict

    expect = browser_kit.expect
    async with apps_client(http_server) as client:
        args = {"image": str(photo_file), "instruction": INSTRUCTION}
        result = dump(await client.call_tool("lego_edit", args))
        attempts = result["structuredContent"]["attempts"]
        low = Verdict(editing_success=3, over_editing=8, naturalness=7, artifacts=9, critique="Only half of it is grey.", judge="test")
        high = Verdict(editing_success=9, over_editing=8, naturalness=8, artifacts=9, critique="Grey all over.", judge="test")
        attempts[:] = [{**attempts[0], "verdict": low.as_dict()}, {**attempts[0], "verdict": high.as_dict()}]
        result["structuredContent"]["chosen_attempt"] = 2
        async with view_in_host(browser_kit, host_pages, client, "lego_edit", args, result) as (page, view, errors):
            rows = view.locator("#judge tr")
            await expect(rows).to_have_count(2)
            await expect(rows.nth(0)).to_contain_text("Only half of it is grey.")
            await expect(view.locator("#judge tr.chosen")).to_contain_text(f"{high.overall:.1f}")
            await expect(view.locator("#status")).to_contain_text(f"judge {high.overall:.1f}/10")
            same_screen("judge", await page.locator("#app").screenshot())
    assert not errors, errors
