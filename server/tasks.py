"""Tool calls that outlive a host's timeout: MCP tasks, on both protocol generations.

A long call (`lego_edit`, `run_workflow`, a GPU brick) may be answered with a task handle
instead of its result; the client polls for the result, and may cancel.
- 2026-07-28: the `io.modelcontextprotocol/tasks` extension (SEP-2663). A client that lists the
  extension in a request's capabilities may get `resultType: "task"`, then uses `tasks/get`
  (the result or error is inlined once done), `tasks/update` and `tasks/cancel`.
- 2025-11-25 (the handshake generation): the experimental tasks of that revision. A client that
  adds `task: {ttl}` to `tools/call` gets `{task}`, then uses `tasks/get`, `tasks/result`
  (waits for the end), `tasks/list` and `tasks/cancel`; `notifications/tasks/status` tells its
  connection when a task ends. Eligible tools say `execution.taskSupport: "optional"`.
A client that asks for neither gets today's answer, progress notifications included.

The work runs on the runner's own event loop (a thread), not the connection's: a result
survives the client disconnecting, and a cancel stops the work at its next step (GPU bricks
check between denoising steps). Tasks belong to the caller's identity (the bearer token's
digest over HTTP, `local` otherwise): no one else can see, poll or cancel them. The store is a
small interface (`TaskStore`) so that a shared one can replace the in-process one.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, RequestParams
from pydantic import ConfigDict

if TYPE_CHECKING:
    from bricks.context import ProgressCallback

    from .settings import TaskSettings

log = logging.getLogger(__name__)

EXTENSION = "io.modelcontextprotocol/tasks"
LEGACY = "2025-11-25"  # the one handshake revision with tasks
RELATED = "io.modelcontextprotocol/related-task"
LONG_TOOLS = ("lego_edit", "run_workflow")
TERMINAL = ("completed", "failed", "cancelled")
IDENTITY = "lego_edit.identity"  # ASGI scope key the HTTP auth sets

_progress: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar("task_progress", default=None)


def progress_of(context: Any) -> ProgressCallback | None:
    """Where a tool reports progress: its task's status when it runs as one, else the caller's
    progress notifications (when the request asked for them)."""
    in_task = _progress.get()
    if in_task is not None:
        return in_task
    return context.report_progress if has_request(context) else None


def has_request(context: Any) -> bool:
    """Whether a tool's context has a request behind it (a task's work has none)."""
    try:
        return context is not None and context.request_context is not None
    except ValueError:  # the SDK's way of saying "outside of a request"
        return False


class TaskNotFound(Exception):
    """No task of this caller has the id (never made, someone else's, or purged)."""


@dataclass
class TaskRecord:
    task_id: str
    owner: str
    tool: str
    created: float
    ttl_ms: int
    poll_ms: int
    status: str = "working"
    message: str | None = None
    updated: float = 0.0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def expired(self) -> bool:
        return time.time() > self.created + self.ttl_ms / 1000

    def wire(self, *, modern: bool, inline: bool = True) -> dict[str, Any]:
        """The task as either generation writes it; `inline` puts a finished task's result or
        error in (2026-07-28's `tasks/get`)."""
        task = {
            "taskId": self.task_id, "status": self.status, "createdAt": _iso(self.created),
            "lastUpdatedAt": _iso(self.updated or self.created),
        }  # fmt: skip
        if self.message:
            task["statusMessage"] = self.message
        if modern:
            task |= {"ttlMs": self.ttl_ms, "pollIntervalMs": self.poll_ms}
            if inline and self.status == "completed":
                task["result"] = self.result
            if inline and self.status == "failed":
                task["error"] = self.error
        else:
            task |= {"ttl": self.ttl_ms, "pollInterval": self.poll_ms}
        return task


class TaskStore(Protocol):
    """Where tasks are kept. Records are values: `save` replaces the stored one."""

    def add(self, record: TaskRecord) -> bool:
        """Keep a new task; False when the store is full of unfinished ones."""

    def get(self, task_id: str) -> TaskRecord | None: ...

    def save(self, record: TaskRecord) -> None: ...

    def owned_by(self, owner: str) -> list[TaskRecord]: ...


class MemoryTaskStore:
    """The in-process store: at most `limit` tasks; finished and expired ones go first."""

    def __init__(self, limit: int):
        self.limit = limit
        self._records: dict[str, TaskRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: TaskRecord) -> bool:
        with self._lock:
            for old in [r for r in self._records.values() if r.expired]:
                del self._records[old.task_id]
            finished = sorted((r for r in self._records.values() if r.status in TERMINAL), key=lambda r: r.created)
            while len(self._records) >= self.limit and finished:
                del self._records[finished.pop(0).task_id]
            if len(self._records) >= self.limit:
                return False
            self._records[record.task_id] = replace(record)
            return True

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            record = self._records.get(task_id)
            return replace(record) if record is not None else None

    def save(self, record: TaskRecord) -> None:
        with self._lock:
            if record.task_id in self._records:
                self._records[record.task_id] = replace(record)

    def owned_by(self, owner: str) -> list[TaskRecord]:
        with self._lock:
            return [replace(r) for r in self._records.values() if r.owner == owner and not r.expired]


Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Runs a tool call to its wire result (a CallToolResult as a dict); raises MCPError on a protocol error."""


@dataclass
class TaskRunner:
    settings: TaskSettings
    call: Call
    eligible: Callable[[str], bool]
    store: TaskStore = field(default=None)  # type: ignore[assignment]
    on_change: Callable[[TaskRecord], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = MemoryTaskStore(self.settings.max_tasks)
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._held = contextlib.ExitStack()  # keeps the worker loop for the process's life
        self._running: dict[str, Any] = {}  # task id -> the future of its work
        self._lock = threading.Lock()

    def start(self, owner: str, tool: str, arguments: dict[str, Any], ttl_ms: int | None = None) -> TaskRecord | None:
        """Start `tool` as a task of `owner`; None when the store is full (the caller then runs it directly)."""
        now = time.time()
        longest = round(self.settings.task_ttl * 1000)
        record = TaskRecord(
            secrets.token_urlsafe(16), owner, tool, now, min(ttl_ms or longest, longest), round(self.settings.task_poll_interval * 1000),
            message=f"{tool}: started", updated=now,
        )  # fmt: skip
        if not self.store.add(record):
            return None
        future = self._loop().start_task_soon(self._work, record.task_id, tool, arguments)
        with self._lock:
            self._running[record.task_id] = future
        future.add_done_callback(lambda done: self._forget(record.task_id, done.cancelled()))
        return record

    def get(self, owner: str, task_id: str) -> TaskRecord:
        record = self.store.get(task_id) if isinstance(task_id, str) else None
        if record is None or record.owner != owner:
            raise TaskNotFound("Failed to retrieve task: Task not found")
        if record.expired:
            raise TaskNotFound("Failed to retrieve task: Task has expired")
        return record

    def cancel(self, owner: str, task_id: str) -> TaskRecord:
        """Ask the work to stop; it does at its next step (the record says `cancelled` then)."""
        record = self.get(owner, task_id)
        with self._lock:
            future = self._running.get(task_id)
        if future is not None:
            future.cancel()
        return record

    async def wait(self, owner: str, task_id: str) -> TaskRecord:
        """The task once it has finished (polling the store, so any store works)."""
        while True:
            record = self.get(owner, task_id)
            if record.status in TERMINAL:
                return record
            await anyio.sleep(0.05)

    # -- the work ----------------------------------------------------------------------------
    def _loop(self) -> anyio.from_thread.BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._portal = self._held.enter_context(anyio.from_thread.start_blocking_portal())
            return self._portal

    async def _work(self, task_id: str, tool: str, arguments: dict[str, Any]) -> None:
        async def report(done: float, total: float | None, message: str | None) -> None:
            self._update(task_id, message=message or (f"{tool}: {done:g} of {total:g}" if total else f"{tool}: working"))

        token = _progress.set(report)
        try:
            result = await self.call(tool, arguments)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._finish(task_id, status="cancelled", message="cancelled by the client")
            raise
        except MCPError as exc:
            await self._finish(task_id, status="failed", message=exc.error.message, error=exc.error.model_dump(exclude_none=True))
        except Exception as exc:  # a bug, not the caller's fault: the details stay in the log
            log.exception("task %s (%s) failed", task_id, tool)
            await self._finish(task_id, status="failed", message=f"{tool} failed: {type(exc).__name__}",
                               error={"code": INTERNAL_ERROR, "message": f"{tool} failed unexpectedly"})  # fmt: skip
        else:
            summary = "finished with an error" if result.get("isError") else "finished"
            await self._finish(task_id, status="completed", message=f"{tool} {summary}", result=result)
        finally:
            _progress.reset(token)

    def _update(self, task_id: str, **changes: Any) -> TaskRecord | None:
        record = self.store.get(task_id)
        if record is None or record.status in TERMINAL:
            return None
        record = replace(record, updated=time.time(), **changes)
        self.store.save(record)
        return record

    async def _finish(self, task_id: str, **changes: Any) -> None:
        record = self._update(task_id, **changes)
        if record is not None and self.on_change is not None:
            try:
                await self.on_change(record)
            except Exception:  # telling the client is best effort
                log.debug("could not send the status of task %s", task_id, exc_info=True)

    def _forget(self, task_id: str, cancelled: bool) -> None:
        with self._lock:
            self._running.pop(task_id, None)
        if cancelled:  # cancelled before its work began: nothing else will say so
            self._update(task_id, status="cancelled", message="cancelled by the client")


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
