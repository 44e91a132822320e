"""The POSTERIZE brick: its schema is posterize.json in this package."""

import numpy as np


def posterize(image: np.ndarray, levels: int) -> dict[str, np.ndarray]:
    step = 256 / levels
    out = image.copy()
    out[..., :3] = (np.floor(image[..., :3] / step) * step + step / 2).astype(np.uint8)
    return {"image": out}
