"""The server through a real MCP client in memory, in both protocol generations."""

import base64
import io
import json

import numpy as np
import pytest
from mcp import Client
from mcp.types import ImageContent, ResourceLink, TextContent
from PIL import Image

from server.app import LegoEditServer
from server.runtime import SERVER_TOOLS, Runtime
from tests.conftest import changed, photo
from tests.server.conftest import MODES

pytestmark = pytest.mark.anyio


def png_of(read_result) -> np.ndarray:
    (contents,) = read_result.contents
    assert contents.mime_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(contents.blob))))


@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_the_registry_rendered(server, registry, mode):
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {b.name for b in registry.available()} | set(SERVER_TOOLS)
    for brick in registry.available():
        tool = tools[brick.name]
        assert tool.input_schema == brick.input_schema
        assert tool.output_schema == brick.output_schema
        assert tool.description == f"{brick.spec.description} {brick.spec.usage('cpu')}".rstrip()
    recolor = tools["recolor_material"].description  # only the note of the backend that runs it
    assert "CSS name" in recolor and "made of wood" not in recolor


@pytest.mark.parametrize("mode", MODES)
async def test_the_tool_list_is_lean(server, mode):
    """Hosts put all of tools/list in the model's context: the CPU bricks stay within 15 KB on the
    wire with the server's own tools (16.5 KB), and the SDK's own renderings carry no titles and no null
    alternatives."""
    async with Client(server, mode=mode) as client:
        listed = await client.list_tools()
    assert len(listed.model_dump_json(by_alias=True, exclude_none=True)) <= 16_500
    text = json.dumps([t.model_dump(by_alias=True, exclude_none=True) for t in listed.tools])
    assert '"title"' not in text and '{"type": "null"}' not in text
    lego_edit = next(t for t in listed.tools if t.name == "lego_edit")
    assert lego_edit.input_schema["properties"]["mask"]["type"] == "string"
    assert lego_edit.input_schema["required"] == ["image", "instruction"]


async def test_handshake_clients_are_told_tools_can_change(server):
    async with Client(server, mode="legacy") as client:
        assert client.server_capabilities.tools.list_changed is True


@pytest.mark.parametrize("mode", MODES)
async def test_chain_by_reference_and_read_the_result(server, photo_file, mode):
    async with Client(server, mode=mode) as client:
        first = await client.call_tool("segment_salient", {"image": str(photo_file)})
        assert not first.is_error, first.content
        mask_uri = first.structured_content["mask"]["uri"]
        box = await client.call_tool("mask_to_box", {"mask": mask_uri})
        assert not box.is_error, box.content
        link, thumb, text = box.content
        assert isinstance(link, ResourceLink) and isinstance(thumb, ImageContent) and isinstance(text, TextContent)
        assert link.uri == box.structured_content["mask"]["uri"]
        boxed = png_of(await client.read_resource(link.uri))
        mask = png_of(await client.read_resource(mask_uri))
    ys, xs = np.nonzero(mask)
    assert boxed.shape == mask.shape == (300, 451)
    assert boxed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all() and boxed.sum() // 255 < mask.size


@pytest.mark.parametrize("mode", MODES)
async def test_thumbnail_respects_the_caps(settings, photo_file, mode):
    runtime = Runtime.from_settings(changed(settings, thumbnail_side=96, thumbnail_bytes=4000))
    async with Client(LegoEditServer(runtime), mode=mode) as client:
        result = await client.call_tool("adjust", {"image": str(photo_file), "saturation": 0.5})
    thumb = next(c for c in result.content if isinstance(c, ImageContent))
    data = base64.b64decode(thumb.data)
    assert len(data) <= 4000
    assert max(Image.open(io.BytesIO(data)).size) <= 96


async def test_thumbnails_can_be_turned_off_and_results_saved(settings, photo_file, tmp_path):
    runtime = Runtime.from_settings(changed(settings, thumbnail_side=0, output_dir=tmp_path / "out"))
    async with Client(LegoEditServer(runtime)) as client:
        result = await client.call_tool("brightness", {"image": str(photo_file), "ratio": 0.7})
    assert not any(isinstance(c, ImageContent) for c in result.content)
    saved = np.asarray(Image.open(result.structured_content["image"]["path"]))
    assert saved.shape == (300, 451, 3) and saved.mean() > photo("chelsea").mean()


BAD_CALLS = [
    ("mask_to_box", {}, "`mask`: is required"),
    ("mask_to_box", {"mask": "x.png", "colour": "red"}, "`colour`: unknown parameter"),
    ("adjust", {"image": "PHOTO", "gamma": "high"}, "`gamma`: must be of type number"),
    ("adjust", {"image": "PHOTO", "contrast": 1e9}, "`contrast`: must be <="),
    ("mask_to_box", {"mask": "../../etc/passwd"}, "outside the allowed roots"),
    ("mask_to_box", {"mask": "data:image/png;base64,%%%"}, "malformed base64"),
    ("mask_to_box", {"mask": "lego://images/" + "0" * 32}, "no stored image"),
    ("no_such_tool", {}, "Unknown tool"),
]


@pytest.mark.parametrize("mode", MODES)
async def test_bad_calls_are_tool_errors_and_the_server_keeps_serving(server, photo_file, mode):
    async with Client(server, mode=mode) as client:
        for name, args, message in BAD_CALLS:
            args = {k: str(photo_file) if v == "PHOTO" else v for k, v in args.items()}
            result = await client.call_tool(name, args)
            assert result.is_error, (name, args)
            assert message in result.content[0].text
            assert "Traceback" not in result.content[0].text
        ok = await client.call_tool("brightness", {"image": str(photo_file), "ratio": 0.5})
        assert not ok.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_image_resource_is_an_error(server, mode):
    from mcp import MCPError

    async with Client(server, mode=mode) as client:
        with pytest.raises(MCPError, match="no stored image"):
            await client.read_resource("lego://images/" + "a" * 32)
        templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["lego://images/{image_id}"]


@pytest.mark.parametrize("mode", MODES)
async def test_long_bricks_report_progress(server, photo_file, mode):
    seen = []

    async def on_progress(done, total, message):
        seen.append((done, total))

    async with Client(server, mode=mode) as client:
        result = await client.call_tool("segment_salient", {"image": str(photo_file)}, progress_callback=on_progress)
    assert not result.is_error
    assert len(seen) >= 2 and seen[-1][0] == seen[-1][1]
