"""Mask algebra: bounding box (BBOX)."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput


def bbox(mask: np.ndarray) -> dict[str, np.ndarray]:
    """The filled bounding rectangle of the mask's foreground."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("mask is empty (no foreground pixel)", param="mask")
    out = np.zeros_like(mask)
    out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = 255
    return {"mask": out}
