"""The image store: every image a brick takes or makes, addressed by a hash of its pixels.

Decoded arrays stay in memory up to a byte budget. Every image a client can address is also
written to the cache directory soon after it is stored, by a background thread, as raw `.npy`
(a copy at memory speed, ~6 ms per megapixel, off the call path), so `lego://images/` URIs
survive the process being killed; spilling beyond the budget writes the same. PNG is encoded
only when an image is read as a resource or saved, and then replaces the raw file.

With a shared tier (`bricks.shared_store`), the images clients can address are also written
there before `put` returns, and images this process does not hold are read from there: several
fronts then serve the same URIs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InvalidInput
from .images import encode_png, to_array
from .shared_store import SharedTier

URI_PREFIX = "lego://images/"
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class StoredImage:
    """A reference to a stored image or mask, as returned by bricks."""

    id: str
    width: int
    height: int
    channels: int  # 1 for a mask, 3 (RGB) or 4 (RGBA)

    @property
    def uri(self) -> str:
        return URI_PREFIX + self.id

    @property
    def is_mask(self) -> bool:
        return self.channels == 1


def _content_id(array: np.ndarray) -> str:
    """sha256 over the shape and the pixels: it runs on CPU instructions here, 3x faster than blake2b."""
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:32]


def _describe(image_id: str, array: np.ndarray) -> StoredImage:
    h, w = array.shape[:2]
    return StoredImage(image_id, w, h, 1 if array.ndim == 2 else array.shape[2])


class ImageStore:
    def __init__(self, cache_dir: Path, *, memory_budget: int, disk_budget: int | None = None, shared: SharedTier | None = None):
        self.cache_dir = Path(cache_dir)
        self.shared = shared
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.memory_budget = memory_budget
        self.disk_budget = disk_budget
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()  # bricks run in worker threads
        self._trim_lock = threading.Lock()
        self._spilling: dict[str, np.ndarray] = {}  # out of memory, not yet on disk
        self._unwritten: queue.Queue[tuple[str, np.ndarray]] = queue.Queue()
        self._writer: threading.Thread | None = None

    # -- writing ---------------------------------------------------------------
    def put(self, array: np.ndarray, *, addressable: bool = True) -> StoredImage:
        """Store an RGB/RGBA image or a mask; the same pixels always get the same id.

        `addressable=False` (a workflow's intermediate, which no client ever sees) skips the
        content hash (~7 % of a CPU workflow) for a random id: unguessable, never shared."""
        array = np.ascontiguousarray(array, dtype=np.uint8)
        if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
            raise ValueError(f"cannot store an array of shape {array.shape}")
        image_id = _content_id(array) if addressable else secrets.token_hex(16)
        array.setflags(write=False)  # shared by reference: nobody may edit it in place
        with self._lock:
            if image_id in self._memory:
                self._memory.move_to_end(image_id)
                return _describe(image_id, array)
            self._memory[image_id] = array
            self._bytes += array.nbytes
            evicted = self._over_budget()
        self._spill(evicted)
        if addressable:
            if self.shared is not None:  # before the id is given out: another front may be asked for it next
                self.shared.write(image_id, array)
            self._write_soon(image_id, array)
        return _describe(image_id, array)

    # -- reading ---------------------------------------------------------------
    def get(self, image_id: str) -> np.ndarray:
        """The pixels of a stored image (read-only); unknown ids raise `InvalidInput`."""
        with self._lock:
            array = self._memory.get(image_id)
            if array is not None:
                self._memory.move_to_end(image_id)
                return array
            if (array := self._spilling.get(image_id)) is not None:  # on its way to disk
                return array
        path = self._png_path(image_id)
        try:
            with Image.open(path) as im:
                array = np.asarray(im) if im.mode == "L" else to_array(im)
        except FileNotFoundError:
            path = self._raw_path(image_id)
            try:
                array = np.load(path, allow_pickle=False)
            except (FileNotFoundError, ValueError):
                array = self._shared_copy(image_id)
        except InvalidInput:
            array = self._shared_copy(image_id)
        with contextlib.suppress(FileNotFoundError):  # trimmed meanwhile: the pixels are read all the same
            os.utime(path)  # disk LRU
        array.setflags(write=False)
        evicted = []
        with self._lock:  # back in memory: the next read is free
            if image_id not in self._memory:
                self._memory[image_id] = array
                self._bytes += array.nbytes
                evicted = self._over_budget()
        self._spill(evicted)
        return array

    def _shared_copy(self, image_id: str) -> np.ndarray:
        array = self.shared.read(image_id) if self.shared is not None else None
        if array is None:
            raise InvalidInput(f"no stored image with id '{image_id}' (it may have expired from the cache)")
        return array

    def info(self, image_id: str) -> StoredImage:
        return _describe(image_id, self.get(image_id))

    def png(self, image_id: str) -> bytes:
        """The image as PNG bytes, encoded at most once (the file doubles as the spill)."""
        try:
            return self._png_path(image_id).read_bytes()
        except FileNotFoundError:  # never written, or trimmed: encode it (again) from the pixels
            pass
        data = encode_png(self.get(image_id))
        self._write(image_id, data)
        self._raw_path(image_id).unlink(missing_ok=True)  # the PNG holds the same pixels
        self._trim_disk()
        return data

    def save(self, image_id: str, directory: Path) -> Path:
        """Copy the image as `<directory>/<id>.png` and return the path."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{image_id}.png"
        if not target.exists():
            target.write_bytes(self.png(image_id))
        return target

    @staticmethod
    def parse_uri(uri: str) -> str | None:
        """The id in a `lego://images/<id>` URI, or None if `uri` is not one; malformed ids are refused."""
        if not uri.startswith(URI_PREFIX):
            return None
        image_id = uri[len(URI_PREFIX):]
        if not _ID.match(image_id):
            raise InvalidInput(f"'{uri}' is not a valid image URI (expected {URI_PREFIX}<32 hex digits>)")
        return image_id

    # -- memory and disk -------------------------------------------------------
    def flush(self) -> None:
        """Write every image still only in memory to disk (at shutdown)."""
        self.wait_written()
        with self._lock:
            pending = [(i, a) for i, a in self._memory.items() if not self._on_disk(i)]
        for image_id, array in pending:
            self._write_raw(image_id, array)
        self._trim_disk()

    def wait_written(self) -> None:
        """Return when every image stored so far for clients is on disk."""
        self._unwritten.join()

    def _png_path(self, image_id: str) -> Path:
        return self.cache_dir / f"{image_id}.png"

    def _raw_path(self, image_id: str) -> Path:
        return self.cache_dir / f"{image_id}.npy"

    def _on_disk(self, image_id: str) -> bool:
        return self._png_path(image_id).exists() or self._raw_path(image_id).exists()

    def _write_soon(self, image_id: str, array: np.ndarray) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_all, name="image-store-writer", daemon=True)
                self._writer.start()
        self._unwritten.put((image_id, array))

    def _write_all(self) -> None:
        while True:
            image_id, array = self._unwritten.get()
            try:
                if not self._on_disk(image_id):
                    self._write_raw(image_id, array)
                    self._trim_disk()
            except OSError:  # a full or vanished disk: the image stays in memory, served as before
                pass
            finally:
                self._unwritten.task_done()

    def _write_raw(self, image_id: str, array: np.ndarray) -> None:
        _write_atomically(self._raw_path(image_id), lambda f: np.save(f, array, allow_pickle=False))

    def _write(self, image_id: str, data: bytes) -> None:
        _write_atomically(self._png_path(image_id), lambda f: f.write(data))

    def _over_budget(self) -> list[tuple[str, np.ndarray]]:
        """Take the least recently used images out of memory beyond the budget (the lock is held);
        until `_spill` has written them they are still served from `_spilling`."""
        evicted = []
        while self._bytes > self.memory_budget and len(self._memory) > 1:
            image_id, array = self._memory.popitem(last=False)
            self._bytes -= array.nbytes
            self._spilling[image_id] = array
            evicted.append((image_id, array))
        return evicted

    def _spill(self, evicted: list[tuple[str, np.ndarray]]) -> None:
        """Write evicted images to disk, outside the lock: other calls go on meanwhile."""
        wrote = False
        for image_id, array in evicted:
            try:
                if not self._on_disk(image_id):
                    self._write_raw(image_id, array)
                    wrote = True
            finally:
                with self._lock:
                    self._spilling.pop(image_id, None)
        if wrote:
            self._trim_disk()

    def _trim_disk(self) -> None:
        """Delete the least recently used files (PNG or raw) beyond the disk budget. One trim at a time (another
        caller finds the work being done and goes on); files may vanish meanwhile (other processes)."""
        if self.disk_budget is None or not self._trim_lock.acquire(blocking=False):
            return
        try:
            files = []
            for path in [*self.cache_dir.glob("*.png"), *self.cache_dir.glob("*.npy")]:
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    files.append((info.st_mtime, info.st_size, path))
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files, key=lambda f: f[0]):
                if total <= self.disk_budget:
                    break
                if path.stem in self._memory:
                    continue
                total -= size
                path.unlink(missing_ok=True)
        finally:
            self._trim_lock.release()


def _write_atomically(path: Path, fill) -> None:
    """Write through a temporary file and rename it: a reader never sees half a file."""
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    with tmp.open("wb") as f:
        fill(f)
    os.replace(tmp, path)
