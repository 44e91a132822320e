"""backend = "ray" past the CPU bricks (those run through `run[ray]` in every brick test): a tiny
FLUX Fill deployment with task LoRAs multiplexed on one base, progress and cancel across the
boundary, and a replica killed in the middle of a call."""

import threading
import time

import anyio
import numpy as np
import pytest

from bricks import BrickFailed, Registry
from server.settings import Settings
from tests.bricks.gpu.tiny_flux import tiny_flux  # noqa: F401 - fixture
from tests.conftest import Bricks, photo

pytestmark = pytest.mark.slow


def flux_front(tiny, tmp_path, app: str, steps: int = 2) -> Registry:  # noqa: F811
    """A front whose bricks compute in the app `app`, deployed here with only the FLUX Fill family
    (the tiny models, device cpu)."""
    from bricks.ray_serve import deploy

    settings = Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", backend="ray",
                        ray_app=app, models_file=tiny.toml(tmp_path / "models.toml", steps=steps))  # fmt: skip
    deploy(settings, address=None, only=["flux_fill"])
    return Registry.from_settings(settings)


def replica(registry: Registry):
    return registry.compute._handle("flux_fill")


def scene() -> np.ndarray:
    return photo("chelsea")[::8, ::8][:32, :32].copy()


def test_three_task_loras_are_served_on_one_base_load(ray_cluster, tiny_flux, tmp_path):  # noqa: F811
    front = flux_front(tiny_flux, tmp_path, "tiny-flux")
    run = Bricks(front)
    image, mask = scene(), np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    seen: list[tuple] = []

    async def progress(done, total, message):
        seen.append((done, total, message))

    run("recolor_material", image=image, mask=mask, prompt="make it blue")
    run("change_environment", image=image, prompt="at night")
    out = anyio.run(lambda: front.call("stylize", {"image": front.store.put(image).uri, "prompt": "a cat", "style": "sketch"},
                                       on_progress=progress))  # fmt: skip
    run("recolor_material", image=image, mask=mask, prompt="made of glass")
    assert front.store.get(out["image"].id).shape == image.shape
    loads = replica(front).loads.remote().result()
    assert loads["flux_fill"] == 1 and loads["lora_rcm"] == loads["lora_env"] == loads["lora_style"] == 1
    assert [d for d, _, m in seen if "denoising step" in (m or "")] == [1, 2]  # the replica's steps, as they ran


def test_a_cancelled_call_stops_the_replica_at_its_next_step(ray_cluster, tiny_flux, tmp_path):  # noqa: F811
    front = flux_front(tiny_flux, tmp_path, "tiny-flux-slow", steps=400)
    uri = front.store.put(scene()).uri
    steps: list[float] = []

    async def call_then_cancel() -> None:
        async def progress(done, total, message):
            steps.append(done)

        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: front.call("change_environment", {"image": uri, "prompt": "at night"}, on_progress=progress))
                while len(steps) < 2:
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught

    anyio.run(call_then_cancel)
    deadline = time.monotonic() + 10
    while replica(front).busy.remote().result() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert replica(front).busy.remote().result() == 0, "the replica still computes the cancelled call"
    assert steps[-1] < 400


def test_a_replica_killed_mid_call_fails_it_clearly_and_later_calls_succeed(ray_cluster, tiny_flux, tmp_path):  # noqa: F811
    import ray

    front = flux_front(tiny_flux, tmp_path, "tiny-flux-fault", steps=400)
    uri = front.store.put(scene()).uri
    outcome: list[BaseException | dict] = []

    def slow_call() -> None:
        try:
            outcome.append(anyio.run(lambda: front.call("change_environment", {"image": uri, "prompt": "at night"})))
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    worker = threading.Thread(target=slow_call)
    worker.start()
    deadline = time.monotonic() + 30
    while not replica(front).busy.remote().result() and time.monotonic() < deadline:
        time.sleep(0.1)
    (actor,) = [a for a in ray.util.list_named_actors(all_namespaces=True) if "tiny-flux-fault" in a["name"] and "bricks-flux_fill" in a["name"]]
    ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]), no_restart=False)
    worker.join(timeout=60)
    assert not worker.is_alive(), "the call in flight hangs"
    assert isinstance(outcome[0], BrickFailed) and "Ray Serve replica failed" in str(outcome[0]), outcome
    # Serve starts a new replica; a later call succeeds
    deadline = time.monotonic() + 60
    while True:
        try:
            out = anyio.run(lambda: front.call("generative_fill", {"image": uri, "mask": front.store.put(np.full((32, 32), 255, np.uint8)).uri,
                                                                  "prompt": "a hat"}))  # fmt: skip
            break
        except BrickFailed:
            assert time.monotonic() < deadline, "no replica came back"
            time.sleep(1)
    assert front.store.get(out["image"].id).shape == (32, 32, 3)
