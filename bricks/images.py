"""Pixel I/O: decoding with limits, masks, PNG encoding and thumbnails (Pillow and NumPy only)."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps

from .errors import InvalidInput


def decode(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Encoded bytes -> RGB or RGBA uint8 array, EXIF orientation applied.

    The size is read from the header and checked against `max_pixels` before any pixel
    is decoded, so a small file that claims to be huge (a decompression bomb) costs nothing.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            width, height = im.size
            if width * height > max_pixels:
                raise InvalidInput(f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}")
            im.load()
            im = ImageOps.exif_transpose(im)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(f"image refused as a decompression bomb: {exc}") from None
    except Image.UnidentifiedImageError:
        raise InvalidInput("not an image Pillow can read (expected PNG, JPEG, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"image data is damaged or truncated: {exc}") from None
    return to_array(im)


def to_array(im: Image.Image) -> np.ndarray:
    """A PIL image -> uint8 RGB, or RGBA when it carries transparency."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def as_mask(array: np.ndarray) -> np.ndarray:
    """Any image -> a binary mask (uint8, 0 or 255).

    A transparent image gives its alpha; an opaque one its luminance; both thresholded at half.
    """
    if array.ndim == 2:
        grey = array
    elif array.shape[2] == 4 and array[..., 3].min() < 255:
        grey = array[..., 3]
    else:
        rgb = array[..., :3].astype(np.uint32)
        grey = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000
    return binary(grey > 127)


def binary(selected: np.ndarray) -> np.ndarray:
    """A boolean array -> a 0/255 uint8 mask (30x faster than np.where, which goes through int64)."""
    return selected.view(np.uint8) * np.uint8(255)


def as_image(array: np.ndarray) -> np.ndarray:
    """A mask or grey array -> RGB; colour arrays pass through unchanged."""
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    return array


def encode_png(array: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Lossless PNG. Level 1 is several times faster than Pillow's default for a few % more bytes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def thumbnail(array: np.ndarray, *, max_side: int, max_bytes: int) -> tuple[bytes, str]:
    """A small preview within `max_side` pixels and `max_bytes` bytes: JPEG for opaque RGB, else PNG.

    Shrinks by an integer box filter (`Image.reduce`), ten times faster than a resampling
    resize here; a preview may come out somewhat under `max_side`.
    """
    im = Image.fromarray(array)
    factor = max(1, math.ceil(max(im.size) / max_side))
    while True:
        small = im.reduce(factor) if factor > 1 else im
        buf = io.BytesIO()
        if small.mode == "RGB":
            small.save(buf, format="JPEG", quality=82)
            mime = "image/jpeg"
        else:
            small.save(buf, format="PNG", optimize=True)
            mime = "image/png"
        if buf.tell() <= max_bytes or max(small.size) <= 16:
            return buf.getvalue(), mime
        factor += max(1, factor // 2)
