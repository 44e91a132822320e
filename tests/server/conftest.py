import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import ToolListChangedNotification
from PIL import Image

from bricks import Registry
from server.app import LegoEditServer
from server.runtime import Runtime
from tests.conftest import photo


@pytest.fixture
def runtime(settings) -> Runtime:
    return Runtime.from_settings(settings)


@pytest.fixture
def registry(runtime) -> Registry:
    """The server's own registry (tests here use it beside `server`)."""
    return runtime.registry


@pytest.fixture
def server(runtime) -> LegoEditServer:
    return LegoEditServer(runtime)


@pytest.fixture
def photo_file(settings) -> Path:
    """A real photo saved under the allowed root."""
    path = settings.allowed_roots[0] / "chelsea.png"
    Image.fromarray(photo("chelsea")).save(path)
    return path


MODES = ["auto", "legacy"]  # 2026-07-28 (discover) and the initialize handshake


class ToolChanges:
    """Tool-list change notices a client receives, in either protocol generation."""

    def __init__(self) -> None:
        self.count = 0
        self._event = anyio.Event()

    def seen(self) -> None:
        self.count += 1
        self._event.set()

    async def on_message(self, message: object) -> None:  # handshake era: a notification
        if isinstance(message, ToolListChangedNotification):
            self.seen()

    async def wait(self, timeout: float = 10) -> None:
        """Until the next notice (or one that came since the last wait)."""
        with anyio.fail_after(timeout):
            await self._event.wait()
        self._event = anyio.Event()


@contextlib.asynccontextmanager
async def watching(server: LegoEditServer, mode: str) -> AsyncIterator[tuple[Client, ToolChanges]]:
    """A connected client that records tool-list changes: on 2026-07-28 through a listen stream."""
    changes = ToolChanges()
    async with Client(server, mode=mode, message_handler=changes.on_message) as client:
        if mode == "legacy":
            yield client, changes
            return
        async with client.listen(tools_list_changed=True) as events, anyio.create_task_group() as tg:
            async def drain() -> None:
                async for _ in events:
                    changes.seen()

            tg.start_soon(drain)
            yield client, changes
            tg.cancel_scope.cancel()
