"""The edit view (an MCP App) on the wire, in both protocol generations: advertised to Apps clients
only, its resource self-contained, its data in results; other clients get the answers of before."""

import base64
import io
import re
from typing import Any

import numpy as np
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from PIL import Image

from server.edit_view import STEP_THUMBNAIL_BYTES, STEP_THUMBNAIL_SIDE, VIEW_KEY, VIEW_URI
from tests.server.conftest import MODES
from tests.server.test_tasks import TasksClient, ask, poll, start_legacy

pytestmark = pytest.mark.anyio
APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
GREY = {"instruction": "make it black and white"}


def decode(blob: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(blob))))


def without_view(result: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in result.get("_meta", {}).items() if k != VIEW_KEY}
    return {k: v for k, v in result.items() if k != "_meta"} | ({"_meta": meta} if meta else {})


def untimed(result: dict[str, Any]) -> dict[str, Any]:
    """A lego_edit result without what differs from run to run: times (also in its JSON text)."""
    structured = result["structuredContent"]
    attempts = [{k: v for k, v in a.items() if k != "seconds"} for a in structured["attempts"]]
    return {**result, "content": result["content"][:-1], "structuredContent": {**structured, "timings": None, "attempts": attempts}}


def dump(result: Any) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


@pytest.mark.parametrize("mode", MODES)
async def test_only_apps_clients_are_offered_the_view(server, mode):
    async with Client(server, mode=mode, extensions=[APPS]) as client:
        assert EXTENSION_ID in client.server_capabilities.extensions
        tools = {t.name: t for t in (await client.list_tools()).tools}
        bound = {name for name, t in tools.items() if (t.meta or {}).get("ui", {}).get("resourceUri") == VIEW_URI}
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        read = (await client.read_resource(VIEW_URI)).contents[0]
    # the planning and workflow tools, editors and mask makers; not the tools that return no image
    assert {"lego_edit", "run_workflow", "adjust", "segment_salient"} <= bound
    assert not bound & {"plan_edit", "judge_edit", "register_tool"}
    assert all(tools[name].meta["ui/resourceUri"] == VIEW_URI for name in bound)
    assert VIEW_URI in resources
    assert read.mime_type == APP_MIME_TYPE and "ui/initialize" in read.text

    async with Client(server, mode=mode) as client:
        assert EXTENSION_ID not in (client.server_capabilities.extensions or {})
        assert not any(t.meta and "ui" in t.meta for t in (await client.list_tools()).tools)
        assert VIEW_URI not in [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as refused:
            await client.read_resource(VIEW_URI)
        assert refused.value.error.code == INVALID_PARAMS and VIEW_URI in refused.value.error.message


async def test_a_client_that_names_apps_without_its_mime_type_has_no_view(server):
    async with Client(server, extensions=[advertise(EXTENSION_ID, {"mimeTypes": ["text/html"]})]) as client:
        assert EXTENSION_ID not in (client.server_capabilities.extensions or {})
        assert VIEW_URI not in [str(r.uri) for r in (await client.list_resources()).resources]


def test_the_view_is_self_contained_and_talks_only_to_its_parent():
    from server.edit_view import edit_view

    html = edit_view().resources()[0].resource.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "loads something from the network"
    assert not re.search(r"<script[^>]*\ssrc|<link\b|@import", html)
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|import)\s*\(", html)
    assert re.findall(r"\.postMessage\(", html) == [".postMessage("] and "window.parent.postMessage" in html
    assert "event.source !== window.parent" in html  # messages from anyone else are ignored
    assert "innerHTML" not in html  # text from results is set as text, never parsed


@pytest.mark.parametrize("mode", MODES)
async def test_results_carry_view_data_for_apps_and_are_unchanged_for_others(server, photo_file, mode):
    h, w = np.asarray(Image.open(photo_file)).shape[:2]
    mask = photo_file.parent / "half.png"
    Image.fromarray(np.where(np.arange(w) < w // 2, 255, 0).astype(np.uint8)[None].repeat(h, 0)).save(mask)
    args = {"image": str(photo_file), "mask": str(mask), **GREY}
    async with Client(server, mode=mode, extensions=[APPS]) as client:
        seen = dump(await client.call_tool("lego_edit", args))
        view = seen["_meta"][VIEW_KEY]
        source = decode((await client.read_resource(view["source"]["uri"])).contents[0].blob)
        sent_mask = decode((await client.read_resource(view["mask"]["uri"])).contents[0].blob)
    async with Client(server, mode=mode) as client:
        plain = dump(await client.call_tool("lego_edit", args))

    assert VIEW_KEY not in plain.get("_meta", {})
    assert untimed(without_view(seen)) == untimed(plain)
    # the view's source is the stored image the edit ran on, whatever the caller passed (a path here)
    assert view["source"] == {"uri": view["source"]["uri"], "width": w, "height": h}
    assert np.array_equal(source, np.asarray(Image.open(photo_file))) and np.array_equal(sent_mask > 127, np.asarray(Image.open(mask)) > 127)
    steps = seen["structuredContent"]["workflow"]["pipeline"][:-1]
    assert [s["step"] for s in view["steps"]] == list(range(1, len(steps) + 1))
    timings = seen["structuredContent"]["timings"]
    assert [f"step{s['step']} {s['brick']}" for s in view["steps"]] == [k for k in timings if k != "total"]
    for step in view["steps"]:
        data = step["thumbnail"].split(",", 1)[1]
        assert len(base64.b64decode(data)) <= STEP_THUMBNAIL_BYTES
        assert max(decode(data).shape[:2]) <= STEP_THUMBNAIL_SIDE


async def test_run_workflow_results_carry_the_steps(server, photo_file):
    workflow = {"pipeline": [{"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "saturation": -1.0},
                              "output": {"image": "step1[image]"}}, {"result": "[step1[image]]"}]}  # fmt: skip
    async with Client(server, extensions=[APPS]) as client:
        result = dump(await client.call_tool("run_workflow", {"workflow": workflow, "image": str(photo_file)}))
    assert not result.get("isError"), result
    view = result["_meta"][VIEW_KEY]
    assert view["mask"] is None and [s["brick"] for s in view["steps"]] == ["adjust"]


async def test_task_results_carry_view_data_only_for_apps_pollers(server, photo_file):
    """A task's work has no caller to ask; whoever polls gets the view data only if it negotiated Apps."""
    args = {"image": str(photo_file), **GREY}
    async with Client(server, mode="legacy", extensions=[APPS]) as client:
        task_id = await start_legacy(client, "lego_edit", args)
        await poll(client, task_id)
        assert VIEW_KEY in (await ask(client, "tasks/result", taskId=task_id))["_meta"]
    async with Client(server, mode="legacy") as client:
        task_id = await start_legacy(client, "lego_edit", args)
        await poll(client, task_id)
        assert VIEW_KEY not in (await ask(client, "tasks/result", taskId=task_id)).get("_meta", {})
    for extensions, has_view in (([TasksClient(), APPS], True), ([TasksClient()], False)):
        async with Client(server, extensions=extensions) as client:
            result = dump(await client.call_tool("lego_edit", args))
        assert (VIEW_KEY in result.get("_meta", {})) is has_view
