"""Real transports: a stdio subprocess and a streamable-HTTP subprocess, in both protocol generations."""

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import cv2
import httpx2
import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ImageContent
from PIL import Image

from tests.conftest import photo
from tests.server.conftest import MODES

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def server_args(settings, *extra: str) -> list[str]:
    return ["-m", "server", "serve", "--allow-root", str(settings.allowed_roots[0]), "--cache-dir", str(settings.cache_dir),
            "--state-dir", str(settings.state_dir), *extra]


def decode(blob: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(blob))))


async def segment_invert_adjust(client: Client, photo_file) -> tuple[np.ndarray, np.ndarray, bytes]:
    """SOS -> INVERSE -> ADJUST (grey background), passing URIs; returns (mask, final image, thumbnail)."""
    sos = await client.call_tool("segment_salient", {"image": str(photo_file)})
    assert not sos.is_error, sos.content
    inv = await client.call_tool("invert_or_subtract", {"mask2": sos.structured_content["mask"]["uri"]})
    assert not inv.is_error, inv.content
    adj = await client.call_tool(
        "adjust", {"image": str(photo_file), "mask": inv.structured_content["mask"]["uri"], "saturation": -1.0}
    )
    assert not adj.is_error, adj.content
    mask = decode((await client.read_resource(sos.structured_content["mask"]["uri"])).contents[0].blob)
    final = decode((await client.read_resource(adj.structured_content["image"]["uri"])).contents[0].blob)
    thumb = next(c for c in adj.content if isinstance(c, ImageContent))
    return mask, final, base64.b64decode(thumb.data)


async def high_level_tools_work(client: Client, photo_file) -> None:
    """lego_edit, plan_edit, run_workflow and both resources over this transport."""
    edited = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "make it sepia"})
    assert not edited.is_error, edited.content
    assert decode((await client.read_resource(edited.structured_content["results"][0]["uri"])).contents[0].blob).shape == (300, 451, 3)
    planned = await client.call_tool("plan_edit", {"image": str(photo_file), "instruction": "warmer"})
    ran = await client.call_tool("run_workflow", {"workflow": planned.structured_content["workflow"], "image": str(photo_file)})
    assert not ran.is_error, ran.content
    invalid = await client.call_tool("run_workflow", {"workflow": {"pipeline": []}, "image": str(photo_file)})
    assert invalid.is_error and "exactly one {'result': ...} element" in invalid.content[0].text
    schema = json.loads((await client.read_resource("lego://workflow/schema")).contents[0].text)
    assert schema["type"] == "object"
    assert "Now, I give you the image" in (await client.read_resource("lego://builder/prompt")).contents[0].text


def check_edit(original: np.ndarray, mask: np.ndarray, final: np.ndarray, thumb: bytes) -> None:
    subject, background = mask > 0, mask == 0
    assert 0.05 < subject.mean() < 0.9
    np.testing.assert_array_equal(final[subject], original[subject])
    away = cv2.erode(background.view(np.uint8), np.ones((21, 21), np.uint8)) > 0  # past the faded edge
    bg = final[away].astype(int)
    assert (bg.max(axis=1) - bg.min(axis=1)).max() <= 1  # background is grey
    assert len(thumb) <= 100_000 and max(Image.open(io.BytesIO(thumb)).size) <= 512


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_chain_on_a_real_photo(settings, photo_file, mode):
    params = StdioServerParameters(command=sys.executable, args=server_args(settings), cwd=str(settings.allowed_roots[0]))
    async with Client(params, mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"segment_salient", "invert_or_subtract", "adjust"} <= names
        mask, final, thumb = await segment_invert_adjust(client, photo_file)
        await high_level_tools_work(client, photo_file)
    check_edit(np.asarray(Image.open(photo_file)), mask, final, thumb)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(proc: subprocess.Popen, port: int, log: Path | None = None) -> None:
    """Until the server process listens on `port` (its log, if any, explains an early exit)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert proc.poll() is None, log.read_text() if log else f"exit {proc.returncode}"
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def http_server(settings, tmp_path):
    port = free_port()
    env = {**os.environ, "LEGO_EDIT_TOKEN": "s3cret-token"}
    args = server_args(settings, "--transport", "http", "--port", str(port), "--max-request-bytes", "2000000")
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, *args], env=env, stderr=stderr)
    wait_for_port(proc, port, log)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=10)


@asynccontextmanager
async def http_client(url: str, mode: str, token: str = "s3cret-token"):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http, max_sse_event_size=None), mode=mode) as client:
            yield client


@pytest.mark.parametrize("mode", MODES)
async def test_http_chain_with_a_token(http_server, photo_file, mode):
    async with http_client(http_server, mode) as client:
        mask, final, thumb = await segment_invert_adjust(client, photo_file)
        await high_level_tools_work(client, photo_file)
    check_edit(np.asarray(Image.open(photo_file)), mask, final, thumb)


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_http_serve_says_where_it_listens(http_server, tmp_path):
    assert f"MCP over streamable HTTP at {http_server}" in (tmp_path / "server.log").read_text()


def test_http_refuses_no_token_wrong_token_wrong_host_and_huge_bodies(http_server):
    assert httpx2.post(http_server, json=INIT, headers=HEADERS).status_code == 401
    wrong = httpx2.post(http_server, json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    auth = {**HEADERS, "Authorization": "Bearer s3cret-token"}
    assert httpx2.post(http_server, json=INIT, headers={**auth, "Host": "evil.example.com"}).status_code == 421
    assert httpx2.post(http_server, json=INIT, headers={**auth, "Origin": "http://evil.example.com"}).status_code == 403
    huge = {**INIT, "params": {**INIT["params"], "pad": "x" * 3_000_000}}
    assert httpx2.post(http_server, json=huge, headers=auth).status_code == 413
    assert httpx2.post(http_server, json=INIT, headers=auth).status_code == 200


def test_http_without_a_token_is_refused_unless_no_auth_on_loopback(settings):
    env = {k: v for k, v in os.environ.items() if k != "LEGO_EDIT_TOKEN"}
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, *server_args(settings, "--transport", "http", *extra)], env=env, capture_output=True, text=True, timeout=30
    )
    missing = run()
    assert missing.returncode == 2 and "needs a bearer token" in missing.stderr
    public = run("--no-auth", "--host", "0.0.0.0")
    assert public.returncode == 2 and "non-loopback" in public.stderr


@pytest.mark.parametrize("header", ["bearer s3cret-token", "BEARER s3cret-token", "Bearer   s3cret-token"])
def test_the_auth_scheme_is_case_insensitive(http_server, header):
    assert httpx2.post(http_server, json=INIT, headers={**HEADERS, "Authorization": header}).status_code == 200


@pytest.mark.parametrize("header", ["Basic s3cret-token", "s3cret-token", "Bearer s3cret-token-and-more", "Bearers3cret-token"])
def test_other_schemes_and_near_tokens_are_refused(http_server, header):
    assert httpx2.post(http_server, json=INIT, headers={**HEADERS, "Authorization": header}).status_code == 401


def _adjust_chain(steps: int) -> dict:
    return {"pipeline": [
        {"step": n, "model": "ADJUST", "input": {"image": "init[image]" if n == 1 else f"step{n - 1}[image]", "warmth": 0.01},
         "output": {"image": f"step{n}[image]"}} for n in range(1, steps + 1)] + [{"result": f"[step{steps}[image]]"}]}


LOADS = {  # what once held the server's loop (issue 9, item 3), at the documented limits and past them
    "24 MP photo, lego_edit": ("big", "lego_edit", {"instruction": "warmer"}, None),
    "24 MP photo, run_workflow": ("big", "run_workflow", {"workflow": _adjust_chain(1)}, None),
    # as JSON text: a client-side model of 5,000 steps would hold this test's own loop
    "500-step workflow": ("small", "run_workflow", {"workflow": json.dumps(_adjust_chain(500))}, None),
    "5000-step workflow": ("small", "run_workflow", {"workflow": json.dumps(_adjust_chain(5000))}, "at most 500 are allowed"),
    "2,000-character instruction": ("small", "lego_edit", {"instruction": ("make it warmer and brighten her face " * 60)[:2000]}, None),
    "1 MB instruction": ("small", "lego_edit", {"instruction": "a" * 1_000_000}, "at most 2,000 are allowed"),
}


@pytest.mark.filterwarnings("ignore:ping is removed")  # ping is the handshake era's, and the plainest probe
@pytest.mark.parametrize("load", LOADS)
async def test_a_second_client_is_answered_during_heavy_calls(http_server, settings, load):
    import anyio

    size, tool, extra, refused = LOADS[load]
    path = settings.allowed_roots[0] / f"{size}.png"
    if not path.exists():
        shape = (6000, 4000) if size == "big" else (64, 48)  # 24 MP: ~1 s to decode
        Image.fromarray(cv2.resize(photo("astronaut"), shape)).save(path, compress_level=1)
    gaps = []
    async with http_client(http_server, "auto") as editing, http_client(http_server, "legacy") as pinging:
        async def ping_all_along(done: anyio.Event) -> None:
            last = time.perf_counter()
            while not done.is_set():
                await pinging.send_ping()
                now = time.perf_counter()
                gaps.append(now - last)  # a blocked server loop delays the answer
                last = now
                await anyio.sleep(0.02)

        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ping_all_along, done)
            await anyio.sleep(0.2)  # a few pings before the call
            result = await editing.call_tool(tool, {"image": str(path), **extra})
            done.set()
    text = result.content[-1].text
    assert result.is_error == (refused is not None) and (refused is None or refused in text), text
    assert len(gaps) >= 3 and max(gaps) < 0.4, max(gaps)
