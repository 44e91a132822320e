"""Mask and layer algebra: bounding box (BBOX), difference (INVERSE) and union (COMPOSE).

INVERSE and COMPOSE work on one kind per call, as in the Builder's workflows: two masks,
or two images, never a mix. Masks count as foreground above half (127).
"""

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


def subtract(
    mask1: np.ndarray | None, mask2: np.ndarray | None, image1: np.ndarray | None, image2: np.ndarray | None
) -> dict[str, np.ndarray]:
    """mask1 minus mask2 (the whole frame minus mask2 when mask1 is absent), or image1 minus image2.

    Images subtract per colour channel, floored at black, as upstream intended (its uint8
    arithmetic wrapped around). A transparent pixel of image2 subtracts nothing (its colour is
    weighted by its alpha); image1's alpha is kept.
    """
    if _kind(mask1, mask2, image1, image2, required_masks=("mask2",)) == "mask":
        keep = np.ones(mask2.shape, bool) if mask1 is None else mask1 > 127
        return {"mask": keep & (mask2 <= 127)}
    taken = image2[..., :3].astype(np.int32)
    if image2.shape[2] == 4:
        taken = (taken * image2[..., 3:] + 127) // 255
    out = image1.copy()
    out[..., :3] = np.clip(image1[..., :3] - taken, 0, 255)
    return {"image": out}


def compose(
    mask1: np.ndarray | None, mask2: np.ndarray | None, image1: np.ndarray | None, image2: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The union of two masks, or image2 laid over image1 through image2's alpha ("over" operator)."""
    if _kind(mask1, mask2, image1, image2, required_masks=("mask1", "mask2")) == "mask":
        return {"mask": (mask1 > 127) | (mask2 > 127)}
    if image2.shape[2] == 3 or image2[..., 3].min() == 255:
        raise InvalidInput(
            "has no transparent pixel, so it would simply hide image1; pass a cut-out with transparency "
            "(e.g. the image output of a segmentation tool)",
            param="image2",
        )
    top_alpha = image2[..., 3:].astype(np.float32) / 255
    top = image2[..., :3].astype(np.float32) * top_alpha
    bottom = image1[..., :3].astype(np.float32)
    if image1.shape[2] == 3:
        return {"image": _to_uint8(top + bottom * (1 - top_alpha))}
    bottom_alpha = image1[..., 3:].astype(np.float32) / 255 * (1 - top_alpha)
    alpha = top_alpha + bottom_alpha
    rgb = (top + bottom * bottom_alpha) / np.maximum(alpha, 1e-6)
    return {"image": np.concatenate([_to_uint8(rgb), _to_uint8(alpha * 255)], axis=2)}


def _kind(mask1, mask2, image1, image2, *, required_masks: tuple[str, ...]) -> str:
    """'mask' or 'image': which pair this call works on; a mix or an incomplete pair is refused."""
    masks = {"mask1": mask1, "mask2": mask2}
    images = {"image1": image1, "image2": image2}
    given_images = [name for name, value in images.items() if value is not None]
    if given_images and any(value is not None for value in masks.values()):
        raise InvalidInput("takes either masks or images in one call, not both", param=given_images[0])
    if given_images:
        missing = [name for name, value in images.items() if value is None]
        if missing:
            raise InvalidInput("is missing: images come in pairs (image1 and image2)", param=missing[0])
        return "image"
    missing = [name for name in required_masks if masks[name] is None]
    if missing:
        raise InvalidInput(f"is required (give {' and '.join(required_masks)}, or image1 and image2)", param=missing[0])
    return "mask"


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
