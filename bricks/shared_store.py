"""The images every front sees: a tier of the image store on an fsspec filesystem.

Several `lego-edit-mcp serve` processes behind a load balancer give out `lego://images/<id>`
URIs that any of them must read. Ids are content hashes, so fronts agree on them without talking;
each front writes the images it gives out here before it answers, as raw `.npy` (no encoding on
the call path), and reads here what its own memory and cache do not hold. A shared directory
(`file:///mnt/lego/images`, NFS) needs nothing more; S3 or GCS URLs need `s3fs` or `gcsfs`.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import threading
import time
from typing import Any

import numpy as np

from .errors import InvalidInput

TRIM_EVERY = 10.0  # seconds between trims: listing a bucket is not free


class SharedTier:
    def __init__(self, url: str, budget: int | None = None):
        try:
            import fsspec
        except ImportError:
            raise InvalidInput("needs fsspec: pip install 'lego-edit-mcp[scale]'", param="shared_store") from None
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
            self.fs.makedirs(self.root, exist_ok=True)
        except (ImportError, ValueError, OSError) as exc:  # an unknown protocol, its package missing, no access
            raise InvalidInput(f"cannot use {url!r}: {exc}", param="shared_store") from None
        self.url = url
        self.budget = budget
        self._trimmed = 0.0
        self._trim_lock = threading.Lock()

    def _path(self, image_id: str) -> str:
        return f"{self.root}/{image_id}.npy"

    def write(self, image_id: str, array: np.ndarray) -> None:
        """Keep the image here (once: the same id is the same pixels), through a temporary name so
        that another front never reads half a file."""
        path = self._path(image_id)
        if self.fs.exists(path):
            return
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
        self.fs.mv(tmp, path)
        self.trim()

    def read(self, image_id: str) -> np.ndarray | None:
        """The image, or None if no front has kept it (or it was trimmed)."""
        path = self._path(image_id)
        try:
            with self.fs.open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        with contextlib.suppress(NotImplementedError, ValueError, OSError):
            self.fs.touch(path, truncate=False)  # least recently used goes first, where the filesystem can tell
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            return None

    def trim(self, *, now: bool = False) -> None:
        """Delete the least recently used images beyond the budget; at most every TRIM_EVERY seconds
        per front, one trim at a time."""
        if self.budget is None or not (now or time.monotonic() - self._trimmed > TRIM_EVERY):
            return
        if not self._trim_lock.acquire(blocking=False):
            return
        try:
            self._trimmed = time.monotonic()
            files = [f for f in self.fs.ls(self.root, detail=True) if str(f["name"]).endswith(".npy")]
            total = sum(int(f.get("size") or 0) for f in files)
            for f in sorted(files, key=_modified):
                if total <= self.budget:
                    break
                with contextlib.suppress(FileNotFoundError):  # another front trimmed it meanwhile
                    self.fs.rm_file(f["name"])
                total -= int(f.get("size") or 0)
        finally:
            self._trim_lock.release()


def _modified(entry: dict[str, Any]) -> float:
    """A listing entry's modification time, whatever the filesystem calls it."""
    for key in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = entry.get(key)
        if isinstance(value, int | float):
            return float(value)
        if hasattr(value, "timestamp"):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                from datetime import datetime

                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0
