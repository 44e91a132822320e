"""Telling connected clients that the tool list changed, and watching the brick sources.

The two protocol generations are told differently:
- handshake era: `notifications/tools/list_changed` on each session. The SDK keeps no list of
  sessions, so a middleware notes each one when its `notifications/initialized` arrives;
- 2026-07-28: a `ToolsListChanged` event on the subscription bus, which reaches clients that
  hold a `subscriptions/listen` stream (others see the change on their next `tools/list`).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged

from bricks import Registry

log = logging.getLogger(__name__)


class ToolListNotifier:
    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()

    async def middleware(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized" and ctx.session is not None:
            self._sessions.add(ctx.session)
        return result

    async def tools_changed(self) -> None:
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a closed connection: forget it
                self._sessions.discard(session)


async def watch_sources(registry: Registry, notifier: ToolListNotifier, interval: float) -> None:
    """Sync the schema directories and entry points every `interval` seconds, for ever.

    The scan (stat calls, schema parsing, plugin imports) runs in a worker thread; the registry
    swaps its maps whole, so tool listings on the event loop never see half a change.
    """
    while True:
        await anyio.sleep(interval)
        try:
            changes = await anyio.to_thread.run_sync(registry.sources.sync)
        except Exception:  # never let one bad scan end the watching
            log.exception("syncing the brick sources failed")
            continue
        if changes:
            log.info("tools changed: added %s, changed %s, removed %s", changes.added, changes.changed, changes.removed)
            await notifier.tools_changed()
