import numpy as np
import pytest

from bricks import InvalidInput
from tests.conftest import photo


def test_bbox_of_a_real_object_mask(run):
    grey = photo("coins")  # bright coins on a dark table
    mask = np.where(grey > 150, 255, 0).astype(np.uint8)
    out = run("BBOX", mask=mask)["mask"]
    ys, xs = np.nonzero(mask)
    box = out > 0
    assert box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()
    assert box.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert set(np.unique(out)) == {0, 255}


def test_bbox_of_empty_mask_names_the_parameter(run):
    with pytest.raises(InvalidInput, match="`mask`.*empty"):
        run("mask_to_box", mask=np.zeros((32, 32), np.uint8))
