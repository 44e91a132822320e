"""The VIGNETTE brick's code: loaded from this file, beside its schema."""

import numpy as np


def vignette(image: np.ndarray, strength: float) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    y, x = np.ogrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    distance = np.sqrt(x * x + y * y) / np.sqrt(2)  # 0 at the centre, 1 in the corners
    gain = 1 - strength * np.clip((distance - 0.35) / 0.65, 0, 1) ** 2
    out = image.astype(np.float32)
    out[..., :3] *= gain[..., None]
    return {"image": out.round().astype(np.uint8)}
