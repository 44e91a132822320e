"""Tasks every front sees: the task store on an fsspec filesystem (`task_store`, e.g. a shared
directory or a bucket), so that a client behind a load balancer can poll, read and cancel a task
on any front. A task's work runs on the front that started it; that front writes its progress and
result here, and looks here for cancels another front took (`TaskRunner` watches for them).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from dataclasses import asdict, replace

from bricks import InvalidInput

from .task_store import TERMINAL, TaskRecord

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what TaskRunner makes: a client's id never names another file


class SharedTaskStore:
    shared = True

    def __init__(self, url: str, limit: int):
        try:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(url)
            self.fs.makedirs(self.root, exist_ok=True)
        except ImportError:
            raise InvalidInput("needs fsspec: pip install 'lego-edit-mcp[scale]'", param="task_store") from None
        except (ValueError, OSError) as exc:
            raise InvalidInput(f"cannot use {url!r}: {exc}", param="task_store") from None
        self.limit = limit

    def _path(self, task_id: str) -> str:
        return f"{self.root}/{task_id}.json"

    def _write(self, record: TaskRecord) -> None:
        path = self._path(record.task_id)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with self.fs.open(tmp, "w") as f:
            f.write(json.dumps(asdict(record)))
        self.fs.mv(tmp, path)

    def _all(self) -> list[TaskRecord]:
        records = []
        for name in self.fs.ls(self.root, detail=False):
            if str(name).endswith(".json") and (record := self.get(str(name).rsplit("/", 1)[-1][:-5])) is not None:
                records.append(record)
        return records

    def add(self, record: TaskRecord) -> bool:
        records = self._all()
        for old in [r for r in records if r.expired]:
            self._remove(old)
        records = [r for r in records if not r.expired]
        finished = sorted((r for r in records if r.status in TERMINAL), key=lambda r: r.created)
        while len(records) >= self.limit and finished:
            oldest = finished.pop(0)
            self._remove(oldest)
            records.remove(oldest)
        if len(records) >= self.limit:
            return False
        self._write(record)
        return True

    def _remove(self, record: TaskRecord) -> None:
        with contextlib.suppress(FileNotFoundError):  # another front dropped it first
            self.fs.rm_file(self._path(record.task_id))

    def get(self, task_id: str) -> TaskRecord | None:
        if not _ID.match(task_id):
            return None
        try:
            with self.fs.open(self._path(task_id), "r") as f:
                return TaskRecord(**json.loads(f.read()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, record: TaskRecord) -> None:
        if self.fs.exists(self._path(record.task_id)):
            self._write(replace(record))

    def owned_by(self, owner: str) -> list[TaskRecord]:
        return [r for r in self._all() if r.owner == owner and not r.expired]
