"""Where MCP tasks are kept: the record of one task, the store interface, and the in-process store.

Records are values (each read returns a copy), so a shared store can replace the in-process one
without the runner noticing.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

TERMINAL = ("completed", "failed", "cancelled")


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
    cancel_requested: bool = False  # a cancel taken by another front than the one doing the work

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


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

