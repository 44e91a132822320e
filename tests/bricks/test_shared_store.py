"""The shared tier of the image store: fronts with their own memory and cache agree on ids and
read each other's images; its budget is kept; a bad URL is the caller's to fix."""

import os
import time

import numpy as np
import pytest

from bricks import InvalidInput, Registry
from bricks.shared_store import SharedTier
from bricks.store import ImageStore
from tests.conftest import changed, photo

fsspec = pytest.importorskip("fsspec", reason="the shared store needs fsspec: pip install -e '.[scale]'")


def front(tmp_path, name: str, url: str, budget: int | None = None) -> ImageStore:
    return ImageStore(tmp_path / name, memory_budget=10**9, shared=SharedTier(url, budget))


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_two_fronts_agree_on_ids_and_read_each_others_images(tmp_path, scheme):
    url = (tmp_path / "shared").as_uri() if scheme == "file" else f"memory://lego-{os.getpid()}-{time.monotonic_ns()}"
    a, b = front(tmp_path, "a", url), front(tmp_path, "b", url)
    cat = photo("chelsea")
    stored = a.put(cat)  # no waiting: the image is shared before its id is given out
    assert np.array_equal(b.get(stored.id), cat) and b.info(stored.id) == stored
    assert b.put(cat).id == stored.id
    assert b.png(stored.id)[:8] == b"\x89PNG\r\n\x1a\n"
    # an intermediate of a workflow (no client sees it) stays in its front
    hidden = a.put(cat[::2, ::2], addressable=False)
    with pytest.raises(InvalidInput, match="no stored image"):
        b.get(hidden.id)


def test_the_shared_budget_drops_the_least_recently_used(tmp_path):
    url = (tmp_path / "shared").as_uri()
    images = [np.full((100, 100, 3), i, np.uint8) for i in range(4)]
    size = 100 * 100 * 3 + 128  # an .npy file: the pixels and its header
    tier = SharedTier(url, budget=int(2.5 * size))
    store = ImageStore(tmp_path / "a", memory_budget=10**9, shared=tier)
    ids = []
    for i, image in enumerate(images):
        ids.append(store.put(image).id)
        os.utime(tmp_path / "shared" / f"{ids[-1]}.npy", (1000 + i, 1000 + i))
    tier.trim(now=True)
    kept = sorted(p.stem for p in (tmp_path / "shared").glob("*.npy"))
    assert kept == sorted(ids[2:])
    other = front(tmp_path, "b", url)
    with pytest.raises(InvalidInput, match="expired"):
        other.get(ids[0])
    assert np.array_equal(other.get(ids[3]), images[3])


@pytest.mark.parametrize("url, says", [("nosuchfs://bucket/x", "nosuchfs"), ("gcs://bucket/x", "gcsfs")])
def test_an_unusable_url_names_the_setting(url, says):
    with pytest.raises(InvalidInput) as refused:
        SharedTier(url)
    assert refused.value.param == "shared_store" and says in str(refused.value)


def test_registries_of_two_fronts_chain_bricks_by_reference(settings, tmp_path):
    url = (tmp_path / "shared").as_uri()
    a = Registry.from_settings(changed(settings, shared_store=url, cache_dir=tmp_path / "a"))
    b = Registry.from_settings(changed(settings, shared_store=url, cache_dir=tmp_path / "b"))
    cat = a.store.put(photo("chelsea")).uri
    import anyio

    grey = anyio.run(lambda: a.call("adjust", {"image": cat, "saturation": -1.0}))["image"]
    warmer = anyio.run(lambda: b.call("adjust", {"image": grey.uri, "warmth": 0.5}))["image"]
    assert np.array_equal(b.resolve(grey.uri, "Image"), a.store.get(grey.id))
    assert a.store.get(warmer.id).shape == photo("chelsea").shape
