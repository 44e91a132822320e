"""FASTINPAINT on LaMa: the TorchScript export of big-lama named by the `lama` model entry.

The mask is grown and the refine strength graded exactly as by the OpenCV backend
(`bricks.cpu.inpaint`); only the fill differs. LaMa takes the image in 0..1 and a 0/1 mask,
both with sides that are multiples of 8 (padded by mirroring here), and returns the whole
image in 0..1; its result is used inside the grown mask only, so every other pixel is kept.
An alpha channel is filled by OpenCV, as LaMa knows colours only.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..context import BrickContext
from ..cpu.inpaint import grow_mask, refine_strength, telea
from .config import ModelEntry
from .manager import ModelManager

MULTIPLE = 8


def fast_inpaint(image: np.ndarray, mask: np.ndarray, ctx: BrickContext) -> dict[str, object]:
    grown = grow_mask(mask)
    filled = _lama(ctx.models, image[..., :3], grown > 0)
    out = np.where((grown > 0)[..., None], filled, image[..., :3])
    if image.shape[2] == 4:
        out = np.dstack([out, telea(image[..., 3], grown)])
    return {"image": out, "score": refine_strength(out, grown > 0)}


def _load(entry: ModelEntry, device: Any, dtype: Any) -> Any:
    """The scripted model, in float32 whatever the configured dtype (its FFT layers need it)."""
    import torch

    with warnings.catch_warnings():  # TorchScript is deprecated in torch, but it is the format LaMa ships in
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(entry.id, map_location=device).eval()


def _lama(mgr: ModelManager, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    import torch

    model = mgr.load("lama", _load)
    h, w = hole.shape
    pad = ((0, -h % MULTIPLE), (0, -w % MULTIPLE))
    image = np.pad(rgb, (*pad, (0, 0)), mode="symmetric").astype(np.float32) / 255
    holes = np.pad(hole, pad, mode="symmetric").astype(np.float32)
    device = mgr.device

    def fill() -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
            m = torch.from_numpy(holes)[None, None].to(device)
            return model(x, m)[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()

    out = mgr.run(fill, what="fast_inpaint")
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
