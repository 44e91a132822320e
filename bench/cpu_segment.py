"""Where the CPU salient-object brick spends its time, and how close it gets: python bench/cpu_segment.py

For each scikit-image photo with a hand-drawn outline (tests/bricks/data/subject_labels.json):
the network (U²-Netp on onnxruntime), GrabCut on the pixels it is unsure of (run only where they
are many, see segment.REFINE_SHARE), the soft alpha, the whole brick, and the IoU of its mask
against the outline. Run `lego-edit-mcp fetch-models` first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's photos and outlines

from bricks.context import BrickContext
from bricks.cpu import segment
from bricks.cpu.matting import cut_out
from bricks.cpu.salient import saliency
from tests.conftest import outline, photo

REPEATS = 5


def _ms(fn) -> float:
    start = time.perf_counter()
    for _ in range(REPEATS):
        fn()
    return (time.perf_counter() - start) / REPEATS * 1000


def main() -> None:
    ctx = BrickContext()
    print(f"{'photo':<10} {'size':>9} {'network':>8} {'grabcut':>8} {'alpha':>7} {'brick':>7}  IoU vs outline")
    for name in ("astronaut", "coffee", "chelsea"):
        image = photo(name)
        saliency(image)  # load the session once
        p = saliency(image)
        fg = segment._settle(image, p, p > 0.5, ctx, refine_share=segment.REFINE_SHARE)
        mask = fg.view(np.uint8) * np.uint8(255)
        network = _ms(lambda: saliency(image))
        grabcut = _ms(lambda: segment._settle(image, p, p > 0.5, ctx, refine_share=segment.REFINE_SHARE))
        alpha = _ms(lambda: cut_out(image, mask))
        brick = _ms(lambda: segment.segment_salient(image, ctx))
        truth = outline(name)
        iou = (fg & truth).sum() / (fg | truth).sum()
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"{name:<10} {size:>9} {network:>6.0f}ms {grabcut:>6.0f}ms {alpha:>5.0f}ms {brick:>5.0f}ms  {iou:.3f}"
              f"  (network {network / brick:.0%} of the brick)")


if __name__ == "__main__":
    main()
