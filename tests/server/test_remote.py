"""A remote tool: a tool of a second lego-edit-mcp process, proxied over stdio or HTTP."""

import shlex
import sys

import numpy as np
import pytest
from mcp import Client

from server.app import LegoEditServer
from server.runtime import Runtime
from tests.conftest import changed, photo
from tests.server.test_transports import http_server, server_args  # noqa: F401 (fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REMOTE_BRIGHT = {
    "name": "remote_brightness",
    "builder_id": "REMOTE-BRIGHT",
    "description": "Brightness, computed by another server.",
    "inputs": [
        {"name": "image", "type": "Image", "description": "The image."},
        {"name": "ratio", "type": "Float", "minimum": 0, "maximum": 1, "description": "0.5 = unchanged."},
    ],
    "outputs": [{"name": "image", "type": "Image", "description": "The result."}],
    "remote": {"server": "other", "tool": "brightness"},
}


@pytest.fixture(params=["stdio", "http"])
def remote_target(request, settings, tmp_path, monkeypatch):
    if request.param == "http":
        monkeypatch.setenv("LEGO_EDIT_REMOTE_TOKEN_OTHER", "s3cret-token")
        return request.getfixturevalue("http_server")
    other = changed(settings, cache_dir=tmp_path / "other-cache", state_dir=tmp_path / "other-state")
    return shlex.join([sys.executable, *server_args(other)])


async def test_a_remote_tool_is_proxied_and_gives_the_remote_pixels(settings, photo_file, remote_target):
    server = LegoEditServer(Runtime.from_settings(changed(settings, remote_servers=(f"other={remote_target}",))))
    async with Client(server) as client:
        registered = await client.call_tool("register_tool", {"definition": REMOTE_BRIGHT})
        assert not registered.is_error, registered.content
        assert registered.structured_content["runs"] == "remote"
        remote = await client.call_tool("remote_brightness", {"image": str(photo_file), "ratio": 0.3})
        local = await client.call_tool("brightness", {"image": str(photo_file), "ratio": 0.3})
        assert not remote.is_error, remote.content
        store = server.registry.store
        far = store.get(store.parse_uri(remote.structured_content["image"]["uri"]))
        near = store.get(store.parse_uri(local.structured_content["image"]["uri"]))
        np.testing.assert_array_equal(far, near)
        assert far.mean() < 0.7 * photo("chelsea").mean()

        bad = await client.call_tool("remote_brightness", {"image": str(photo_file), "ratio": 2})
        assert bad.is_error and "`ratio`: must be <= 1" in bad.content[0].text  # checked here, before any call

        missing = await client.call_tool("register_tool", {"definition": {**REMOTE_BRIGHT, "name": "r2", "builder_id": "R-TWO",
                                                                       "remote": {"server": "other", "tool": "brightnes"}}})
        assert missing.is_error and "has no tool 'brightnes'" in missing.content[0].text
        extra = {**REMOTE_BRIGHT, "name": "r3", "builder_id": "R-THREE",
                 "inputs": [*REMOTE_BRIGHT["inputs"], {"name": "gain", "type": "Float", "description": "x"}]}
        wrong = await client.call_tool("register_tool", {"definition": extra})
        assert wrong.is_error and "takes no input gain" in wrong.content[0].text


async def test_an_unreachable_remote_is_a_clear_registration_error(settings):
    server = LegoEditServer(Runtime.from_settings(changed(settings, remote_servers=("other=http://127.0.0.1:9/mcp",))))
    async with Client(server) as client:
        result = await client.call_tool("register_tool", {"definition": REMOTE_BRIGHT})
        assert result.is_error and "cannot reach remote server 'other'" in result.content[0].text
        assert "remote_brightness" not in {t.name for t in (await client.list_tools()).tools}


async def test_one_connection_is_held_and_reopened_when_the_remote_dies(settings, photo_file, tmp_path):
    """The stdio remote starts once for many calls; killed, it is started again on the next call."""
    import os
    import signal

    import anyio

    starts = tmp_path / "starts"
    other = changed(settings, cache_dir=tmp_path / "other-cache", state_dir=tmp_path / "other-state")
    command = f"echo $$ >> {shlex.quote(str(starts))}; exec {shlex.join([sys.executable, *server_args(other)])}"
    target = shlex.join(["sh", "-c", command])
    server = LegoEditServer(Runtime.from_settings(changed(settings, remote_servers=(f"other={target}",))))
    async with Client(server) as client:
        assert not (await client.call_tool("register_tool", {"definition": REMOTE_BRIGHT})).is_error
        for ratio in (0.2, 0.4, 0.6):
            result = await client.call_tool("remote_brightness", {"image": str(photo_file), "ratio": ratio})
            assert not result.is_error, result.content
        pids = starts.read_text().split()
        assert len(pids) == 1  # registration check and three calls: one process

        os.kill(int(pids[0]), signal.SIGKILL)
        await anyio.sleep(0.5)
        again = await client.call_tool("remote_brightness", {"image": str(photo_file), "ratio": 0.3})
        assert not again.is_error, again.content
        assert len(starts.read_text().split()) == 2
