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
small interface (`server.task_store.TaskStore`) so that a shared one can replace the in-process one;
the wire side is `server.task_protocol`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR

from .task_store import TERMINAL, MemoryTaskStore, TaskNotFound, TaskRecord, TaskStore

if TYPE_CHECKING:
    from bricks.context import ProgressCallback

    from .settings import TaskSettings

log = logging.getLogger(__name__)

LONG_TOOLS = ("lego_edit", "run_workflow")
CANCEL_CHECK = 0.5  # seconds between looks for cancels taken by other fronts (a shared task store)

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
        """Ask the work to stop; it does at its next step (the record says `cancelled` then). Work
        on another front sharing the store is told through the record (see `_watch_cancels`)."""
        record = self.get(owner, task_id)
        with self._lock:
            future = self._running.get(task_id)
        if future is not None:
            future.cancel()
        elif record.status not in TERMINAL:
            self._update(task_id, cancel_requested=True)
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
                if getattr(self.store, "shared", False):
                    self._portal.start_task_soon(self._watch_cancels)
            return self._portal

    async def _watch_cancels(self) -> None:
        """With a shared store: stop the work of this front's tasks that another front was asked to cancel."""
        while True:
            await anyio.sleep(CANCEL_CHECK)
            with self._lock:
                running = dict(self._running)
            for task_id, future in running.items():
                record = await anyio.to_thread.run_sync(self.store.get, task_id)
                if record is not None and record.cancel_requested:
                    future.cancel()

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
