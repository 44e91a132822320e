"""Image references -> pixels: store URIs, files under the allowed roots, data URIs, raw base64."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

import numpy as np

from .errors import InvalidInput
from .images import decode
from .settings import Settings
from .store import ImageStore

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)

REFERENCE_HELP = (
    "an image reference: a 'lego://images/<id>' URI from an earlier result, a file path under an "
    "allowed root, a 'data:image/...;base64,' URI, or raw base64"
)


def load_reference(ref: object, *, store: ImageStore, settings: Settings) -> np.ndarray:
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


def _decode(data: bytes, settings: Settings) -> np.ndarray:
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


def _read_file(ref: str, settings: Settings) -> bytes:
    raw = ref[7:] if ref.startswith("file://") else ref
    try:
        # Follows symlinks, so a link out of a root is refused; containment is checked before
        # existence so that nothing is revealed about files outside the roots.
        path = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise InvalidInput(f"cannot open '{raw}': {exc.__class__.__name__}") from None
    roots = [r.expanduser().resolve() for r in settings.allowed_roots]
    if not any(path.is_relative_to(root) for root in roots):
        raise InvalidInput(
            f"file '{raw}' is outside the allowed roots ({', '.join(map(str, roots))}); "
            "add its folder with --allow-root or LEGO_EDIT_ALLOWED_ROOTS"
        )
    if not path.exists():
        raise InvalidInput(f"no such file '{raw}' (and not a store URI, data URI or base64)")
    if not path.is_file():
        raise InvalidInput(f"'{raw}' is not a regular file")
    size = path.stat().st_size
    if size > settings.max_bytes:
        raise InvalidInput(f"file '{raw}' is {size:,} bytes, over the limit of {settings.max_bytes:,} bytes")
    return path.read_bytes()
