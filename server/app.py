"""The MCP server: every available brick as a tool, stored images as resources.

Tools are rendered from the registry, not declared with decorators: the advertised input
schema is the schema file's rendering, and arguments are validated once, in `Registry.call`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from mcp.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, Tool, ToolAnnotations

from bricks import Brick, BrickFailed, InvalidInput, StoredImage
from bricks.store import URI_PREFIX

from . import __version__, register_tool, workflow_tools
from .edit_view import ViewGate, edit_view
from .notify import ToolListNotifier, watch_sources
from .results import error_result, tool_result
from .shared_tasks import SharedTaskStore
from .runtime import Runtime
from .task_protocol import TasksExtension
from .tasks import LONG_TOOLS, TaskRunner, progress_of

log = logging.getLogger(__name__)

_INLINE_THUMBNAIL_PIXELS = 256 * 256

INSTRUCTIONS = """\
Image-editing bricks (Lego-Edit). Every image result is stored and returned as
{"uri": "lego://images/<id>", "width", "height"} with a small thumbnail: pass the URI to the
next tool instead of re-sending pixels, and read it as a resource for the full-resolution PNG.
An image or mask reference is such a URI, a file path under the server's allowed roots, or a
data:image/...;base64 URI. Masks are single-channel images, 255 = selected (any image works:
its alpha, else its grey level, thresholded at half)."""


def mcp_tool(brick: Brick, backend: str | None) -> Tool:
    """The brick as an MCP tool; its usage text ends with the note of the backend that runs it."""
    spec = brick.spec
    annotations = spec.annotations.model_dump(exclude_none=True) if spec.annotations else {}
    usage = spec.usage(backend)
    return Tool(
        name=spec.name,
        title=spec.title or annotations.get("title"),
        description=f"{spec.description} {usage}".rstrip(),
        input_schema=brick.input_schema,
        output_schema=brick.output_schema,
        annotations=ToolAnnotations.model_validate(annotations) if annotations else None,
    )


def compact_tool(tool: Tool) -> Tool:
    """A tool the SDK rendered from a signature, without what pydantic adds for nothing: titles,
    `additionalProperties: true`, and `null` alternatives of optional inputs (leaving one out means null)."""
    update: dict[str, Any] = {"input_schema": _compact(tool.input_schema, inputs=True)}
    if tool.output_schema is not None:
        update["output_schema"] = _compact(tool.output_schema, inputs=False)
    return tool.model_copy(update=update)


def _compact(schema: Any, *, inputs: bool) -> Any:
    if isinstance(schema, list):
        return [_compact(s, inputs=inputs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: {k: _compact(v, inputs=inputs) for k, v in value.items()} if key in ("properties", "$defs")
        else _compact(value, inputs=inputs)
        for key, value in schema.items()
        if key != "title" and not (key == "additionalProperties" and value is True)
    }
    options = out.get("anyOf")
    if inputs and "default" in out and out["default"] is None and isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["default"], out["anyOf"]
        out = {**(rest[0] if len(rest) == 1 else {"anyOf": rest}), **out}
    return out


class LegoEditServer(MCPServer[Any]):
    """The MCP facade over a `Runtime`: it renders the registry's bricks as tools and adds its own."""

    def __init__(self, runtime: Runtime):
        self.notifier = ToolListNotifier()
        self.runtime = runtime
        self.registry = runtime.registry
        task_store = runtime.settings.tasks.task_store
        store = SharedTaskStore(task_store, runtime.settings.tasks.max_tasks) if task_store else None
        self.tasks = TaskRunner(runtime.settings.tasks, self._run_detached, self._is_long, store)
        tasks = TasksExtension(self.tasks)
        self.tasks.on_change = tasks.notify
        super().__init__(
            "lego-edit-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=_lifespan,
            subscriptions=self.notifier.bus, extensions=[tasks, edit_view()],
        )
        self.middleware.extend([self.notifier.middleware, tasks.middleware, ViewGate(self.registry)])
        self.resource(
            "lego://images/{image_id}",
            name="image",
            description="A stored image or mask, as PNG",
            mime_type="image/png",
        )(self._read_image)
        workflow_tools.register(self, runtime)
        register_tool.register(self, runtime.tools, self.notifier)
        _advertise_list_changed(self)

    async def list_tools(self) -> list[Tool]:
        bricks = [mcp_tool(b, self.registry.backend_for(b)[0]) for b in self.registry.available()]
        return [*bricks, *(compact_tool(t) for t in await super().list_tools())]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        if name not in self.registry:
            return await super().call_tool(name, arguments, context)
        try:
            outputs = await self.registry.call(name, arguments, on_progress=progress_of(context))
        except (InvalidInput, BrickFailed) as exc:
            log.info("tool %s: %s", name, exc)
            return error_result(exc)
        brick = self.registry.get(name).name
        pixels = sum(v.width * v.height for v in outputs.values() if isinstance(v, StoredImage))
        if pixels <= _INLINE_THUMBNAIL_PIXELS:  # a thread hop costs more than these thumbnails
            return tool_result(self.registry, self.runtime.settings.results, brick, outputs)
        return await anyio.to_thread.run_sync(tool_result, self.registry, self.runtime.settings.results, brick, outputs)

    def _is_long(self, name: str) -> bool:
        """Tools that may run as tasks: the planning and workflow tools, and the bricks a GPU runs."""
        if name in LONG_TOOLS:
            return True
        return name in self.registry and self.registry.backend_for(self.registry.get(name))[0] == "gpu"

    async def _run_detached(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool call with no request behind it (a task's work), as the wire would carry its result."""
        try:
            result = await self.call_tool(name, arguments)
        except MCPError:
            raise
        except Exception as exc:  # as the SDK answers a tool that raised: an error result
            log.info("task of tool %s: %s", name, exc)
            result = CallToolResult(content=[TextContent(text=str(exc))], is_error=True)
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    async def _read_image(self, image_id: str) -> bytes:
        try:
            image_id = self.registry.store.parse_uri(URI_PREFIX + image_id)
            return await anyio.to_thread.run_sync(self.registry.store.png, image_id)
        except InvalidInput as exc:
            raise ResourceNotFoundError(str(exc)) from None


@contextlib.asynccontextmanager
async def _lifespan(server: LegoEditServer) -> AsyncIterator[None]:
    """Watch the brick sources and hold the remote servers' connections while serving; at
    shutdown, write the images still only in memory to the cache, so their URIs outlive the process."""
    interval = server.runtime.settings.tools.watch_interval
    try:
        async with anyio.create_task_group() as tg:
            if interval > 0:
                tg.start_soon(watch_sources, server.registry, server.notifier, interval, server.runtime.tools)
            tg.start_soon(server.runtime.tools.pool.serve)
            yield
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.registry.store.flush)


def _advertise_list_changed(server: MCPServer[Any]) -> None:
    """Advertise `tools.listChanged` to handshake-era clients.

    MCPServer never passes NotificationOptions, so it advertises `false`; tools change at
    run time here. The SDK (2.3.0) has no public hook, hence the private attribute; a test
    checks the advertised capability so an SDK change cannot slip by.
    """
    lowlevel = server._lowlevel_server
    create = type(lowlevel).create_initialization_options

    def create_with_list_changed(notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any):
        options = notification_options or NotificationOptions(tools_changed=True)
        return create(lowlevel, options, *args, **kwargs)

    lowlevel.create_initialization_options = create_with_list_changed  # type: ignore[method-assign]
