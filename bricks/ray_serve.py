"""The replicas of backend = "ray": each Ray Serve deployment runs the bricks of one model family.

A replica has its own registry (the same schemas and model configuration as the front, on the
machine with the GPU) and runs only a brick's compute: the front has validated the arguments and
resolved the images, and stores what comes back. Arrays travel in Ray's object store both ways.
`run` streams: progress events as the brick reports them, a heartbeat while it is quiet, then its
outputs; when the front cancels the request (or its stream is dropped), the brick stops at its
next `ctx.check_cancelled()`, between denoising steps on a GPU. FLUX Fill calls carry their task
LoRA as Serve's multiplexed model id, so they go to a replica that already holds that adapter
next to the one base it loaded.

This module imports Ray; only the `deploy` command and the replicas import it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from ray import serve

from .context import BrickContext
from .deployments import families, options
from .errors import BrickFailed, InvalidInput, UnknownTool
from .registry import Registry
from .settings import BrickSettings, StoreSettings

log = logging.getLogger(__name__)
HEARTBEAT = 0.5  # seconds between events of a quiet brick, so that the front sees a cancel in time


class _Cancelled(BaseException):
    """The front cancelled the request: the brick unwinds at its next check."""


@dataclass(frozen=True)
class _Sections:
    store: StoreSettings
    bricks: BrickSettings


class _ReplicaContext(BrickContext):
    def __init__(self, registry: Registry, events: queue.Queue, cancelled: threading.Event):
        super().__init__(registry.models, registry.weights)
        self._events = events
        self._cancelled = cancelled

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        self._events.put(("progress", done, total, message))

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise _Cancelled


class BrickReplica:
    """One replica of a family's deployment."""

    def __init__(self, family: str, store: dict[str, Any], bricks: dict[str, Any]):
        self.family = family
        store = {**store, "cache_dir": tempfile.mkdtemp(prefix="lego-edit-replica-")}  # it keeps no images
        self.registry = Registry.from_settings(_Sections(StoreSettings(**store), BrickSettings(**{**bricks, "backend": "auto"})))

    async def describe(self, names: list[str]) -> dict[str, tuple[str | None, str]]:
        """Which backend would run each brick here, or why none can."""
        out: dict[str, tuple[str | None, str]] = {}
        for name in names:
            try:
                out[name] = self.registry.backend_for(self._brick(name))
            except UnknownTool as exc:
                out[name] = (None, str(exc))
        return out

    async def loads(self) -> dict[str, int]:
        """How often each model was loaded in this replica (the one base of several LoRAs shows here)."""
        return dict(self.registry.models.loads)

    async def busy(self) -> int:
        """Bricks still computing in this replica (a cancelled one leaves at its next step)."""
        return sum(t.name.startswith("brick-") for t in threading.enumerate())

    @serve.multiplexed(max_num_models_per_replica=8)
    async def _adapter(self, adapter: str) -> str:
        """Serve's record of the LoRAs this replica holds; the model manager loads each on first use."""
        return adapter

    def _brick(self, name: str):
        if name not in self.registry:
            self.registry.sources.sync()  # a schema added to a watched directory since the replica started
        return self.registry.get(name)

    async def run(self, name: str, backend: str, inputs: dict[str, Any]):
        if adapter := serve.get_multiplexed_model_id():
            await self._adapter(adapter)
        fn, wants_ctx = self._brick(name).impl(backend)
        events: queue.Queue = queue.Queue()
        cancelled = threading.Event()
        ctx = _ReplicaContext(self.registry, events, cancelled)

        def work() -> None:
            try:
                events.put(("result", fn(**inputs, **({"ctx": ctx} if wants_ctx else {}))))
            except _Cancelled:
                events.put(("cancelled",))
            except InvalidInput as exc:
                events.put(("invalid", exc.reason, exc.param))
            except BrickFailed as exc:
                events.put(("failed", exc.reason))
            except Exception as exc:
                log.exception("brick %s failed", name)
                events.put(("failed", f"{type(exc).__name__}: {exc}"))

        threading.Thread(target=work, name=f"brick-{name}", daemon=True).start()
        try:
            while True:
                try:
                    event = await asyncio.to_thread(events.get, timeout=HEARTBEAT)
                except queue.Empty:
                    yield ("alive",)
                    continue
                yield event
                if event[0] != "progress":
                    return
        finally:
            cancelled.set()  # cancelled or dropped by the front: the brick stops at its next step


def application(settings: Any, only: list[str] | None = None):
    """The Serve application: one deployment per model family with available bricks (or the `only` families)."""
    import ray

    registry = Registry.from_settings(settings)
    store, bricks = (section.model_dump(mode="json") for section in (settings.store, settings.bricks))
    gpus = ray.cluster_resources().get("GPU", 0)
    groups = families(registry.all(), cpu_bricks=not settings.bricks.ray_local_cpu_bricks)
    deployment = serve.deployment(BrickReplica)
    apps = {
        family: deployment.options(**options(family, registry.model_config, cluster_gpus=gpus)).bind(family, store, bricks)
        for family in groups if only is None or family in only
    }  # fmt: skip
    return serve.deployment(_Ingress, name="ingress", ray_actor_options={"num_cpus": 0}).bind(**apps), sorted(apps)


class _Ingress:
    """The application's entry: it only holds the family deployments (fronts call those directly)."""

    def __init__(self, **deployments: Any):
        self.deployments = deployments

    async def families(self) -> list[str]:
        return sorted(self.deployments)


def deploy(settings: Any, *, address: str | None, only: list[str] | None = None) -> list[str]:
    """Start (or update) the deployments on the Ray cluster at `address` as the application
    `ray_app`; returns their families."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    app, names = application(settings, only)
    serve.run(app, name=settings.bricks.ray_app, route_prefix=None)
    return names
