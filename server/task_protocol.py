"""The wire side of MCP tasks: the 2026-07-28 extension and the 2025-11-25 experimental tasks.

See `server.tasks` for what a task is; this module turns requests into runner calls and records
into each generation's shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, RequestParams
from pydantic import ConfigDict

from .task_store import TERMINAL, TaskNotFound, TaskRecord
from .tasks import TaskRunner

EXTENSION = "io.modelcontextprotocol/tasks"
LEGACY = "2025-11-25"  # the one handshake revision with tasks
RELATED = "io.modelcontextprotocol/related-task"
IDENTITY = "lego_edit.identity"  # ASGI scope key the HTTP auth sets


def owner_of(ctx: Any) -> str:
    """The caller's identity: the digest of its bearer token over HTTP, else 'local' (one user:
    stdio, in-memory)."""
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None) or {}
    return scope.get(IDENTITY, "local")


class TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow")
    task_id: Any = None


class TasksExtension(Extension):
    """Tasks for the long tools: the 2026-07-28 extension, plus the handshake generation's
    experimental tasks through `middleware` (its `{task}` result is not a CallToolResult, so
    it must skip the SDK's result check, which only a middleware may)."""

    identifier = EXTENSION

    def __init__(self, runner: TaskRunner):
        self.runner = runner
        self._started_on: dict[str, tuple[Any, Any]] = {}  # handshake-era task id -> (its connection, that loop's token)

    def methods(self) -> list[MethodBinding]:
        both = [("tasks/get", self._get), ("tasks/cancel", self._cancel)]
        modern = [("tasks/update", self._update)]
        legacy = [("tasks/result", self._result), ("tasks/list", self._list)]
        return [
            *(MethodBinding(m, TaskParams, h) for m, h in both),
            *(MethodBinding(m, TaskParams, h, frozenset({"2026-07-28"})) for m, h in modern),
            *(MethodBinding(m, TaskParams, h, frozenset({LEGACY})) for m, h in legacy),
        ]

    # -- starting ------------------------------------------------------------------------------
    async def intercept_tool_call(self, params: Any, ctx: Any, call_next: Any) -> Any:
        if _modern(ctx) and _declares(ctx) and self.runner.eligible(params.name):
            record = self.runner.start(owner_of(ctx), params.name, params.arguments or {})
            if record is not None:
                return {"resultType": "task", **record.wire(modern=True, inline=False)}
        return await call_next(ctx)

    async def middleware(self, ctx: Any, call_next: Any) -> Any:
        """The handshake generation: `tools/call` with `task`, and what `initialize` and
        `tools/list` must say for clients to use it."""
        if ctx.protocol_version == LEGACY and ctx.method == "tools/call" and isinstance(ctx.params, dict):
            task, name = ctx.params.get("task"), ctx.params.get("name")
            if isinstance(task, dict) and isinstance(name, str) and self.runner.eligible(name):
                ttl = task.get("ttl") if isinstance(task.get("ttl"), int) and task["ttl"] > 0 else None
                record = self.runner.start(owner_of(ctx), name, ctx.params.get("arguments") or {}, ttl)
                if record is not None:
                    self._remember(record.task_id, ctx)
                    return {"task": record.wire(modern=False)}
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict) and result.get("protocolVersion") == LEGACY:
            result.setdefault("capabilities", {})["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        if ctx.method == "tools/list" and ctx.protocol_version == LEGACY and isinstance(result, dict):
            for tool in result.get("tools", []):
                if self.runner.eligible(tool.get("name", "")):
                    tool["execution"] = {"taskSupport": "optional"}
        return result

    # -- the methods --------------------------------------------------------------------------
    async def _get(self, ctx: Any, params: TaskParams) -> dict[str, Any]:
        self._check(ctx)
        return self._found(ctx, params).wire(modern=_modern(ctx))

    async def _cancel(self, ctx: Any, params: TaskParams) -> dict[str, Any]:
        self._check(ctx)
        with _invalid():
            record = self.runner.cancel(owner_of(ctx), params.task_id)
        if _modern(ctx):
            return {}
        if record.status not in TERMINAL:
            record = replace(record, status="cancelled", message="cancelled by the client")
        return record.wire(modern=False)

    async def _update(self, ctx: Any, params: TaskParams) -> dict[str, Any]:
        self._check(ctx)
        self._found(ctx, params)  # no task of this server ever asks for input: nothing to take
        return {}

    async def _result(self, ctx: Any, params: TaskParams) -> dict[str, Any]:
        with _invalid():
            record = await self.runner.wait(owner_of(ctx), params.task_id)
        related = {RELATED: {"taskId": record.task_id}}
        if record.status == "completed":
            return {**record.result, "_meta": {**(record.result or {}).get("_meta", {}), **related}}
        error = record.error or {"code": INTERNAL_ERROR, "message": record.message or "cancelled"}
        raise MCPError(code=error["code"], message=error["message"], data=related)

    async def _list(self, ctx: Any, params: TaskParams) -> dict[str, Any]:
        records = sorted(self.runner.store.owned_by(owner_of(ctx)), key=lambda r: r.created, reverse=True)
        return {"tasks": [r.wire(modern=False) for r in records]}

    def _found(self, ctx: Any, params: TaskParams) -> TaskRecord:
        with _invalid():
            return self.runner.get(owner_of(ctx), params.task_id)

    def _check(self, ctx: Any) -> None:
        """2026-07-28: only clients that declare the extension may use its methods."""
        if _modern(ctx) and not _declares(ctx):
            from mcp.server.mcpserver.server import require_client_extension

            require_client_extension(ctx, EXTENSION)

    def _remember(self, task_id: str, ctx: Any) -> None:
        """The connection that started a handshake-era task hears when it ends."""
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None:
            self._started_on[task_id] = (connection, anyio.lowlevel.current_token())

    async def notify(self, record: TaskRecord) -> None:
        """`notifications/tasks/status` to the handshake-era connection that started the task
        (sent on that connection's own event loop)."""
        connection, token = self._started_on.pop(record.task_id, (None, None))
        if connection is not None:
            params = {**record.wire(modern=False), "_meta": {RELATED: {"taskId": record.task_id}}}
            await anyio.to_thread.run_sync(
                lambda: anyio.from_thread.run(connection.notify, "notifications/tasks/status", params, token=token)
            )


def _modern(ctx: Any) -> bool:
    return ctx.protocol_version != LEGACY and ctx.protocol_version >= "2026-07-28"


def _declares(ctx: Any) -> bool:
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION in capabilities.extensions)


@contextlib.contextmanager
def _invalid() -> Iterator[None]:
    """An unknown or foreign task id is the caller's mistake: INVALID_PARAMS."""
    try:
        yield
    except TaskNotFound as exc:
        raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
