"""Image references -> pixels: store URIs, files under the allowed roots, data URIs, raw base64."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path

import numpy as np

from .errors import InvalidInput
from .images import decode
from .settings import StoreSettings
from .store import ImageStore

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)

REFERENCE_HELP = (
    "an image reference: a 'lego://images/<id>' URI from an earlier result, a file path under an "
    "allowed root, a 'data:image/...;base64,' URI, or raw base64"
)


def load_reference(ref: object, *, store: ImageStore, settings: StoreSettings) -> np.ndarray:
    """Resolve one reference to a read-only uint8 array; anything wrong raises `InvalidInput`."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"expected {REFERENCE_HELP}")
    ref = ref.strip()
    image_id = store.parse_uri(ref)
    if image_id is not None:
        return store.get(image_id)
    if ref.lower().startswith("data:"):
        return _decode(_data_uri_bytes(ref, settings.max_bytes), settings)
    compact = "".join(ref.split())
    if len(compact) >= 32 and len(compact) % 4 == 0 and _BASE64.match(compact):
        return _decode(_b64(compact, settings.max_bytes), settings)
    return _decode(_read_file(ref, settings), settings)


def _decode(data: bytes, settings: StoreSettings) -> np.ndarray:
    array = decode(data, max_pixels=settings.max_pixels)
    array.setflags(write=False)
    return array


def _data_uri_bytes(uri: str, max_bytes: int) -> bytes:
    m = _DATA_URI.match(uri)
    if not m or not m.group("b64"):
        raise InvalidInput("malformed data URI: expected 'data:image/<type>;base64,<data>'")
    if m.group("mime") and not m.group("mime").lower().startswith("image/"):
        raise InvalidInput(f"data URI has media type '{m.group('mime')}', expected image/*")
    return _b64("".join(uri[m.end():].split()), max_bytes)


def _b64(text: str, max_bytes: int) -> bytes:
    if len(text) * 3 // 4 > max_bytes:
        raise InvalidInput(f"encoded image is over the limit of {max_bytes:,} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("malformed base64 image data") from None


MAX_PATH = 4096  # bytes of a whole path, as Linux's PATH_MAX
MAX_NAME = 255  # bytes of one path component


def _read_file(ref: str, settings: StoreSettings) -> bytes:
    """The bytes of a file under an allowed root, checked on the descriptor that is read.

    The path is first checked as text (containment before existence, so nothing is revealed
    about files outside the roots); then it is opened once, non-blocking, and what was opened
    is checked again: a regular file whose real path is under a root. A symlink swapped in
    between, a FIFO or a device is refused, and the read is bounded by `max_bytes`."""
    raw = ref[7:] if ref.startswith("file://") else ref
    if "\x00" in raw:
        raise InvalidInput("file path contains a NUL byte")
    if len(os.fsencode(raw)) > MAX_PATH or any(len(os.fsencode(part)) > MAX_NAME for part in raw.split(os.sep)):
        raise InvalidInput(f"file path is too long (at most {MAX_PATH} bytes, {MAX_NAME} per name)")
    try:
        path = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise InvalidInput(f"cannot open '{raw}': {exc.__class__.__name__}") from None
    roots = [r.expanduser().resolve() for r in settings.allowed_roots]
    outside = InvalidInput(
        f"file '{raw}' is outside the allowed roots ({', '.join(map(str, roots))}); "
        "add its folder with --allow-root or LEGO_EDIT_ALLOWED_ROOTS"
    )
    if not any(path.is_relative_to(root) for root in roots):
        raise outside
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InvalidInput(f"no such file '{raw}' (and not a store URI, data URI or base64)") from None
    except OSError as exc:
        raise InvalidInput(f"cannot open '{raw}': {exc.strerror or exc.__class__.__name__}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"'{raw}' is not a regular file")
        opened = _real_path(fd, path)
        if opened is None or not any(opened.is_relative_to(root) for root in roots):
            raise outside
        if info.st_size > settings.max_bytes:
            raise InvalidInput(f"file '{raw}' is {info.st_size:,} bytes, over the limit of {settings.max_bytes:,} bytes")
        data = f.read(settings.max_bytes + 1)
    if len(data) > settings.max_bytes:
        raise InvalidInput(f"file '{raw}' is over the limit of {settings.max_bytes:,} bytes")
    return data


def _real_path(fd: int, expected: Path) -> Path | None:
    """Where the open descriptor really is: /proc/self/fd on Linux, F_GETPATH on macOS; elsewhere
    the checked path, if it is still the same file (device and inode) as the one opened."""
    proc = Path(f"/proc/self/fd/{fd}")
    if proc.exists():
        return Path(os.readlink(proc))
    if hasattr(fcntl, "F_GETPATH"):
        return Path(os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0]))
    opened, named = os.fstat(fd), os.stat(expected, follow_symlinks=False)
    return expected if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino) else None
