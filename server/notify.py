"""Telling connected clients that the tool list changed, and watching the brick sources.

The two protocol generations are told differently:
- handshake era: `notifications/tools/list_changed` on each connection. The SDK keeps no list
  of connections, so a middleware notes each one (weakly) when its `notifications/initialized`
  arrives. The middleware sees a per-request session proxy; the connection behind it is the
  private `_connection` in SDK 2.3, and a test checks that notices still arrive;
- 2026-07-28: a `ToolsListChanged` event on the subscription bus, which reaches clients that
  hold a `subscriptions/listen` stream (others see the change on their next `tools/list`).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged

from bricks import Registry

if TYPE_CHECKING:
    from .runtime_tools import RuntimeTools

log = logging.getLogger(__name__)

NOTICE_SECONDS = 2.0


class ToolListNotifier:
    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()  # gone with their clients

    async def middleware(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            connection = getattr(ctx.session, "_connection", None)
            if connection is not None:
                self._connections.add(connection)
        return result

    async def tools_changed(self) -> None:
        await self.bus.publish(ToolsListChanged())
        for connection in list(self._connections):
            with anyio.move_on_after(NOTICE_SECONDS):  # a stalled client must not hold up the rest
                await connection.send_tool_list_changed()  # best effort: never raises


async def watch_sources(registry: Registry, notifier: ToolListNotifier, interval: float, tools: RuntimeTools | None = None) -> None:
    """Sync the schema directories and entry points every `interval` seconds, for ever, and the
    tools other fronts registered in a shared state directory (`tools`).

    The scan (stat calls, schema parsing, plugin imports) runs in a worker thread; the registry
    swaps its maps whole, so tool listings on the event loop never see half a change.
    """
    def sync() -> bool:
        changes = registry.sources.sync()
        if changes:
            log.info("tools changed: added %s, changed %s, removed %s", changes.added, changes.changed, changes.removed)
        registered = tools is not None and tools.sync()
        return bool(changes) or registered

    while True:
        await anyio.sleep(interval)
        try:
            if await anyio.to_thread.run_sync(sync):
                await notifier.tools_changed()
        except Exception:  # never let one bad scan end the watching (and the server's lifespan)
            log.exception("syncing the brick sources failed")
