"""Tools added while a client stays connected: by schema file, by plugin entry point and by
register_tool; each is announced, listed, callable and usable in workflows at once."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import cv2
import numpy as np
import pytest
from mcp import Client

from bricks import Registry, SchemaError
from server.app import LegoEditServer
from server.runtime import RESERVED, Runtime
from tests.conftest import changed, photo
from tests.server.conftest import MODES, watching

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[2] / "examples"
WATCH = 0.05


def color_pop() -> dict:
    return json.loads((EXAMPLES / "composite" / "color_pop.json").read_text())


def pixels(server: LegoEditServer, result) -> np.ndarray:
    assert not result.is_error, result.content
    return server.registry.store.get(server.registry.store.parse_uri(result.structured_content["image"]["uri"]))


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def prompt_text(client: Client) -> str:
    return (await client.read_resource("lego://builder/prompt")).contents[0].text


async def run_one_step(client: Client, model: str, image: Path, **literals) -> dict:
    workflow = {"process": "try it", "pipeline": [
        {"step": 1, "model": model, "input": {"image": "init[image]", **literals}, "output": {"image": "step1[image]"}},
        {"result": "[step1[image]]"}]}  # fmt: skip
    result = await client.call_tool("run_workflow", {"workflow": workflow, "image": str(image)})
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.parametrize("mode", MODES)
async def test_a_schema_file_dropped_into_a_watched_dir_goes_live(settings, photo_file, mode):
    plugins = settings.allowed_roots[0] / "plugins"
    plugins.mkdir()
    server = LegoEditServer(Runtime.from_settings(changed(settings, schema_dirs=(plugins,), watch_interval=WATCH)))
    async with watching(server, mode) as (client, changes):
        assert "vignette" not in await names(client)
        shutil.copy(EXAMPLES / "schemas" / "vignette.py", plugins)
        shutil.copy(EXAMPLES / "schemas" / "vignette.json", plugins)
        await changes.wait()
        tool = next(t for t in (await client.list_tools()).tools if t.name == "vignette")
        assert tool.input_schema["properties"]["strength"]["maximum"] == 1.0
        out = pixels(server, await client.call_tool("vignette", {"image": str(photo_file), "strength": 0.9}))
        before = photo("chelsea").astype(float)
        h, w = before.shape[:2]
        assert out[:20, :20].mean() < 0.5 * before[:20, :20].mean()  # corners darkened
        np.testing.assert_allclose(out[h // 2 - 10 : h // 2 + 10, w // 2 - 10 : w // 2 + 10], before[h // 2 - 10 : h // 2 + 10, w // 2 - 10 : w // 2 + 10], atol=1)
        await run_one_step(client, "VIGNETTE", photo_file, strength=0.5)
        text = await prompt_text(client)
        entry = text[text.index(".VIGNETTE (Darken the image towards its corners") :]
        lines = entry.splitlines()[1:4]
        assert lines[:2] == ["Input: {Image[image], Float[strength]}", "Output: {Image[image]}"]
        assert lines[2].startswith("Constraint: Use for 'vignette'")

        (plugins / "broken.json").write_text("{not json")  # reported and ignored
        await anyio.sleep(10 * WATCH)
        assert "not valid JSON" in server.registry.sources.problems[str(plugins / "broken.json")]
        assert "vignette" in await names(client)

        (plugins / "vignette.json").unlink()
        await changes.wait()
        assert "vignette" not in await names(client)
        assert "VIGNETTE" not in await prompt_text(client)
        gone = await client.call_tool("vignette", {"image": str(photo_file)})
        assert gone.is_error and "Unknown tool" in gone.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_an_edited_module_is_picked_up(settings, photo_file, mode):
    plugins = settings.allowed_roots[0] / "plugins"
    shutil.copytree(EXAMPLES / "schemas", plugins)
    server = LegoEditServer(Runtime.from_settings(changed(settings, schema_dirs=(plugins,), watch_interval=WATCH)))
    async with watching(server, mode) as (client, changes):
        first = pixels(server, await client.call_tool("vignette", {"image": str(photo_file)}))
        code = (plugins / "vignette.py").read_text().replace("out[..., :3] *= gain[..., None]", "out[..., :3] *= 0")
        (plugins / "vignette.py").write_text(code)
        await changes.wait()
        second = pixels(server, await client.call_tool("vignette", {"image": str(photo_file)}))
        assert first.mean() > 50 and second.max() == 0


def install_plugin(site: Path) -> None:
    """What `pip install examples/plugin` leaves in site-packages: the package and its dist-info."""
    shutil.copytree(EXAMPLES / "plugin" / "lego_posterize", site / "lego_posterize")
    info = site / "lego_posterize-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lego-posterize\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[lego_edit.bricks]\nposterize = lego_posterize\n")


@pytest.mark.parametrize("mode", MODES)
async def test_a_plugin_installed_while_serving_goes_live(settings, photo_file, mode, monkeypatch, tmp_path):
    server = LegoEditServer(Runtime.from_settings(changed(settings, watch_interval=WATCH)))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lego_posterize", raising=False)
    async with watching(server, mode) as (client, changes):
        assert "posterize" not in await names(client)
        install_plugin(site)
        await changes.wait()
        assert "posterize" in await names(client)
        out = pixels(server, await client.call_tool("posterize", {"image": str(photo_file), "levels": 2}))
        assert set(np.unique(out)) <= {64, 192}
        await run_one_step(client, "POSTERIZE", photo_file, levels=3)
        assert "POSTERIZE (Reduce every colour channel" in await prompt_text(client)


@pytest.mark.parametrize("mode", MODES)
async def test_a_registered_composite_is_live_and_survives_a_restart(settings, photo_file, mode):
    server = LegoEditServer(Runtime.from_settings(settings))
    async with watching(server, mode) as (client, changes):
        registered = await client.call_tool("register_tool", {"definition": color_pop()})
        assert not registered.is_error, registered.content
        assert registered.structured_content["runs"] == "composite"
        await changes.wait()
        tool = next(t for t in (await client.list_tools()).tools if t.name == "color_pop")
        assert set(tool.output_schema["properties"]) == {"image", "subject"}
        result = await client.call_tool("color_pop", {"image": str(photo_file)})
        out, subject = pixels(server, result), result.structured_content["subject"]
        first_uri = result.structured_content["image"]["uri"]
        assert subject["width"] == out.shape[1]
        mask = server.registry.store.get(server.registry.store.parse_uri(subject["uri"])) > 0
        grey = np.ptp(out.astype(int), axis=2)  # 0 where R = G = B
        away = cv2.erode((~mask).view(np.uint8), np.ones((21, 21), np.uint8)) > 0  # past the change's faded edge
        assert grey[away].max() <= 1 and grey[mask].mean() > 10
        run = await run_one_step(client, "COLOR-POP", photo_file, saturation=-0.5)
        assert run["timings"]["step1 color_pop"] > 0
        assert "COLOR-POP (Keep the main subject in colour" in await prompt_text(client)

    restarted = LegoEditServer(Runtime.from_settings(settings))
    async with Client(restarted, mode=mode) as client:
        assert "color_pop" in await names(client)
        again = await client.call_tool("color_pop", {"image": str(photo_file)})
        assert again.structured_content["image"]["uri"] == first_uri  # a composite's outputs are content-addressed
        assert (await client.read_resource(first_uri)).contents  # and outlive the server that made them
        removed = await client.call_tool("unregister_tool", {"name": "COLOR-POP"})
        assert removed.structured_content == {"removed": "color_pop"}
        assert "color_pop" not in await names(client)
    assert "color_pop" not in LegoEditServer(Runtime.from_settings(settings)).registry


def renamed(definition: dict, **changes) -> dict:
    return {**definition, **changes}


BAD_REGISTRATIONS = [
    (renamed(color_pop(), name="adjust"), "parameter `name`: 'adjust' is already taken by tool 'adjust'"),
    (renamed(color_pop(), builder_id="SOS"), "parameter `builder_id`: 'SOS' is already taken by tool 'segment_salient'"),
    (renamed(color_pop(), name="lego_edit"), "parameter `name`: 'lego_edit' is already taken by the server's own tool"),
    (renamed(color_pop(), name="Color Pop"), "parameter `definition`: name: String should match pattern"),
    (renamed(color_pop(), composite={"pipeline": [
        {"step": 1, "model": "COLOR-POP", "input": {"image": "init[image]"}, "output": {"image": "step1[image]"}}],
        "outputs": {"image": "step1[image]"}}), "uses the composite itself"),  # fmt: skip
    (renamed(color_pop(), composite={**color_pop()["composite"], "outputs": {"image": "step9[image]"}}),
     "step9[image] refers to step 9"),
    (renamed(color_pop(), composite={**color_pop()["composite"], "outputs": {"image": "init[image]"}}),
     "must name a step output"),
    (renamed(color_pop(), remote={"server": "elsewhere", "tool": "x"}), "give exactly one of"),
    ({k: v for k, v in color_pop().items() if k != "composite"} | {"remote": {"server": "elsewhere", "tool": "x"},
     "outputs": [{"name": "image", "type": "Image", "description": "x"}]}, "remote server 'elsewhere' is not allowed"),
    (renamed(color_pop(), inputs=[{"name": "image", "type": "Picture", "description": "x"}]), "parameter `inputs.0.type`"),
    (renamed(color_pop(), colour="red"), "parameter `colour`: Extra inputs are not permitted"),
]


@pytest.mark.parametrize("mode", MODES)
async def test_bad_registrations_are_clear_errors_and_the_server_keeps_serving(settings, photo_file, mode):
    server = LegoEditServer(Runtime.from_settings(settings))
    async with Client(server, mode=mode) as client:
        before = await names(client)
        for definition, message in BAD_REGISTRATIONS:
            result = await client.call_tool("register_tool", {"definition": definition})
            assert result.is_error and message in result.content[0].text, (message, result.content[0].text)
        assert await names(client) == before

        assert not (await client.call_tool("register_tool", {"definition": color_pop()})).is_error
        layered = renamed(color_pop(), name="double_pop", builder_id="DOUBLE-POP", composite={
            "pipeline": [{"step": 1, "model": "COLOR-POP", "input": {"image": "init[image]"}, "output": {"image": "step1[image]"}}],
            "outputs": {"image": "step1[image]"}})  # fmt: skip
        assert not (await client.call_tool("register_tool", {"definition": layered})).is_error
        used = await client.call_tool("unregister_tool", {"name": "color_pop"})
        assert used.is_error and "used by composite double_pop; unregister that first" in used.content[0].text
        builtin = await client.call_tool("unregister_tool", {"name": "adjust"})
        assert builtin.is_error and "only tools added with register_tool" in builtin.content[0].text
        unknown = await client.call_tool("unregister_tool", {"name": "colour_pop"})
        assert unknown.is_error and "parameter `name`: unknown tool 'colour_pop'; did you mean 'color_pop'" in unknown.content[0].text
        pixels(server, await client.call_tool("double_pop", {"image": str(photo_file)}))


async def test_the_register_tool_schema_describes_a_definition(server, photo_file):
    async with Client(server) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "register_tool")
        uri = "lego://schemas/tool-definition"
        assert uri in tool.input_schema["properties"]["definition"]["description"]  # linked, not inlined
        definition = json.loads((await client.read_resource(uri)).contents[0].text)
    assert {"name", "builder_id", "inputs", "composite", "remote"} <= set(definition["properties"])
    assert "Param" in definition["$defs"]
    (example,) = definition["examples"]  # the schema's own example registers and runs
    async with Client(server) as client:
        registered = await client.call_tool("register_tool", {"definition": example})
        assert not registered.is_error, registered.content
        cut = await client.call_tool(example["name"], {"image": str(photo_file)})
        assert not cut.is_error, cut.content
    alpha = server.registry.store.get(server.registry.store.parse_uri(cut.structured_content["image"]["uri"]))[..., 3]
    assert 0.05 < (alpha > 127).mean() < 0.95


async def test_a_brick_file_cannot_take_a_name_of_the_server(settings):
    plugins = settings.allowed_roots[0] / "plugins"
    plugins.mkdir()
    schema = json.loads((EXAMPLES / "schemas" / "vignette.json").read_text()) | {"name": "run_workflow"}
    (plugins / "run_workflow.json").write_text(json.dumps(schema))
    with pytest.raises(SchemaError, match="'run_workflow' is already taken by the server's own tool"):
        Registry.from_settings(changed(settings, schema_dirs=(plugins,)), RESERVED)
    with pytest.raises(SchemaError, match="'run_workflow' is already taken by the server's own tool"):
        Runtime.from_settings(changed(settings, schema_dirs=(plugins,)))  # what the server and the CLI are built from


async def test_unreadable_saved_tools_are_reported_and_skipped(settings):
    saved = settings.state_dir / "tools"
    saved.mkdir(parents=True)
    (saved / "color_pop.json").write_text(json.dumps(color_pop()))
    (saved / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (saved / "half.json").write_text('{"name": "half"')
    server = LegoEditServer(Runtime.from_settings(settings))
    assert "color_pop" in server.registry
    problems = server.runtime.tools.restore()  # a second restore: all three files, color_pop now a clash
    assert {Path(p).name for p in problems} == {"color_pop.json", "latin1.json", "half.json"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
async def test_http_clients_are_told_of_a_new_brick(settings, mode, tmp_path):
    """An agent framework on streamable HTTP hears of a file dropped into a watched directory."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import ToolListChangedNotification

    from tests.server.test_transports import free_port, server_args, wait_for_port

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    port = free_port()
    args = server_args(settings, "--transport", "http", "--port", str(port), "--schemas", str(plugins), "--watch-interval", str(WATCH))
    proc = subprocess.Popen([sys.executable, *args], env={**os.environ, "LEGO_EDIT_TOKEN": "t0ken"})
    try:
        wait_for_port(proc, port)
        told = anyio.Event()

        async def on_message(message) -> None:
            if isinstance(message, ToolListChangedNotification):
                told.set()

        async with httpx2.AsyncClient(headers={"Authorization": "Bearer t0ken"}, timeout=60) as http:
            transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
            async with Client(transport, mode=mode, message_handler=on_message) as client:
                assert "vignette" not in await names(client)
                async with contextlib.AsyncExitStack() as stack:
                    if mode != "legacy":
                        events = await stack.enter_async_context(client.listen(tools_list_changed=True))
                    shutil.copy(EXAMPLES / "schemas" / "vignette.py", plugins)
                    shutil.copy(EXAMPLES / "schemas" / "vignette.json", plugins)
                    with anyio.fail_after(10):
                        if mode == "legacy":
                            await told.wait()
                        else:
                            async for _ in events:
                                break
                assert "vignette" in await names(client)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("mode", MODES)
async def test_fronts_sharing_a_state_directory_take_in_each_others_tools(settings, photo_file, mode, tmp_path):
    """Behind a load balancer: a tool registered on one front goes live on the other, and goes when unregistered."""
    other = LegoEditServer(Runtime.from_settings(changed(settings, cache_dir=tmp_path / "other", watch_interval=0.1)))
    async with Client(LegoEditServer(Runtime.from_settings(settings)), mode=mode) as here, watching(other, mode) as (there, changes):
        assert not (await here.call_tool("register_tool", {"definition": color_pop()})).is_error
        await changes.wait()
        assert "color_pop" in await names(there)
        result = await there.call_tool("color_pop", {"image": str(photo_file)})
        assert not result.is_error and result.structured_content["image"]["width"] == 451
        assert (await here.call_tool("unregister_tool", {"name": "color_pop"})).structured_content == {"removed": "color_pop"}
        await changes.wait()
        assert "color_pop" not in await names(there)
