import numpy as np
import pytest
from PIL import Image

from bricks import ImageStore, InvalidInput
from bricks.images import as_mask
from tests.conftest import photo


def test_ids_are_content_addressed(tmp_path):
    store = ImageStore(tmp_path, memory_budget=10**9)
    img = photo("chelsea")
    a, b = store.put(img), store.put(img.copy())
    assert a.id == b.id and (a.width, a.height, a.channels) == (451, 300, 3)
    assert store.put(img[:, :, ::-1]).id != a.id
    assert store.put(img[..., 0]).is_mask  # a 2-D array is a mask


def test_png_is_encoded_only_when_read_and_round_trips(tmp_path):
    store = ImageStore(tmp_path, memory_budget=10**9)
    img = photo("coffee")
    ref = store.put(img)
    assert not list(tmp_path.glob("*.png"))  # nothing encoded yet
    data = store.png(ref.id)
    assert data.startswith(b"\x89PNG") and len(list(tmp_path.glob("*.png"))) == 1
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{ref.id}.png")), img)


def test_over_budget_images_spill_to_disk_and_come_back(tmp_path):
    img = photo("astronaut")
    store = ImageStore(tmp_path, memory_budget=img.nbytes * 2)
    refs = [store.put(np.roll(img, i, axis=1)) for i in range(4)]
    assert len(store._memory) == 2  # the two oldest were spilled
    store.wait_written()
    assert {p.stem for p in tmp_path.glob("*.npy")} == {r.id for r in refs}  # raw copies, no PNG encoded
    assert not list(tmp_path.glob("*.png"))
    for i, ref in enumerate(refs):
        np.testing.assert_array_equal(store.get(ref.id), np.roll(img, i, axis=1))


def test_masks_survive_a_restart_through_flush(tmp_path):
    mask = as_mask(photo("coins"))
    store = ImageStore(tmp_path, memory_budget=10**9)
    ref = store.put(mask)
    store.flush()
    restarted = ImageStore(tmp_path, memory_budget=10**9)
    np.testing.assert_array_equal(restarted.get(ref.id), mask)
    assert restarted.info(ref.id).is_mask


def test_results_are_durable_soon_without_a_flush(tmp_path):
    """The SDK's stdio client kills the server ~2 s after closing stdin: no flush runs then."""
    base = photo("astronaut")
    store = ImageStore(tmp_path, memory_budget=1024**3)
    refs = [store.put(np.roll(base, i, axis=1)) for i in range(101)]
    store.wait_written()  # what the background writer does right after each put, here all at once
    killed_and_restarted = ImageStore(tmp_path, memory_budget=1024**3)
    for i in (0, 50, 100):
        np.testing.assert_array_equal(killed_and_restarted.get(refs[i].id), np.roll(base, i, axis=1))
    assert len(list(tmp_path.glob("*.npy"))) == 101


def test_intermediates_are_never_written(tmp_path):
    store = ImageStore(tmp_path, memory_budget=1024**3)
    store.put(photo("coffee"), addressable=False)
    store.wait_written()
    assert not list(tmp_path.iterdir())


def test_disk_budget_deletes_least_recently_used(tmp_path):
    img = photo("astronaut")
    store = ImageStore(tmp_path, memory_budget=1, disk_budget=1)
    refs = [store.put(np.roll(img, i, axis=0)) for i in range(3)]
    store.wait_written()
    assert len([*tmp_path.glob("*.png"), *tmp_path.glob("*.npy")]) < 3
    with pytest.raises(InvalidInput):
        store.get(refs[0].id)


def test_stored_arrays_are_read_only(tmp_path):
    store = ImageStore(tmp_path, memory_budget=10**9)
    ref = store.put(photo("camera"))
    with pytest.raises(ValueError):
        store.get(ref.id)[0, 0] = 1


def test_a_file_vanishing_during_a_trim_is_skipped(tmp_path, monkeypatch):
    store = ImageStore(tmp_path, memory_budget=1, disk_budget=None)
    for i in range(3):
        store.png(store.put(np.full((8, 8, 3), i, np.uint8)).id)
    store.disk_budget = 1
    real_glob = type(tmp_path).glob
    monkeypatch.setattr(type(tmp_path), "glob", lambda self, pattern: [*real_glob(self, pattern), self / "gone.png"])
    store._trim_disk()  # another trim (or process) deleted gone.png between the listing and its stat


def test_concurrent_reads_and_trims_lose_no_result(tmp_path):
    import concurrent.futures

    store = ImageStore(tmp_path, memory_budget=1, disk_budget=20_000)  # every image spills; trims run all along

    def work(i: int) -> bytes:
        image_id = store.put(np.full((16, 16, 3), i % 256, np.uint8)).id
        return store.png(image_id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(400)))
    assert all(r.startswith(b"\x89PNG") for r in results)


def test_png_of_an_image_trimmed_from_disk_is_encoded_again(tmp_path):
    store = ImageStore(tmp_path, memory_budget=10**9, disk_budget=None)
    image_id = store.put(np.zeros((4, 4, 3), np.uint8)).id
    first = store.png(image_id)
    (tmp_path / f"{image_id}.png").unlink()  # trimmed by someone else
    assert store.png(image_id) == first


def test_a_spill_does_not_hold_up_other_calls(tmp_path, monkeypatch):
    import threading

    store = ImageStore(tmp_path, memory_budget=200_000)
    kept = store.put(np.zeros((100, 100, 3), np.uint8), addressable=False)  # only the spill writes it
    writing, release = threading.Event(), threading.Event()
    real = store._write_raw

    def slow_write(image_id, array):  # a slow disk
        writing.set()
        release.wait(5)
        real(image_id, array)

    monkeypatch.setattr(store, "_write_raw", slow_write)
    spiller = threading.Thread(target=store.put, args=(np.ones((300, 300, 3), np.uint8),), kwargs={"addressable": False})
    spiller.start()  # over the budget: `kept` is spilled, slowly
    assert writing.wait(5)
    reader = threading.Thread(target=lambda: store.get(kept.id))  # the spilled image, still on its way
    reader.start()
    reader.join(1)
    assert not reader.is_alive()  # answered while the write was still going on
    release.set()
    spiller.join(5)
    store.wait_written()
