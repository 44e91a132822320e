"""What a running brick may use besides its inputs: progress reports, cooperative cancellation,
and the model manager and trained weights of the registry running it.

A brick that takes more than a moment declares a `ctx` parameter and calls `ctx.progress(...)`
and `ctx.check_cancelled()` between iterations. Bricks run in a worker thread, so both hop back
to the event loop; outside the server (scripts, tests) the plain `BrickContext` does nothing.
A GPU brick loads its models through `ctx.models`, a CPU brick its trained files through `ctx.weights`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio.from_thread

from .errors import BrickFailed

if TYPE_CHECKING:
    from .cpu.weights import Weights
    from .gpu.manager import ModelManager

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]


class BrickContext:
    def __init__(self, models: ModelManager | None = None, weights: Weights | None = None):
        self._models = models
        self._weights = weights

    @property
    def models(self) -> ModelManager:
        """The model manager of the registry running the brick."""
        if self._models is None:
            raise BrickFailed("context", "this call has no model manager: run GPU bricks through a registry")
        return self._models

    @property
    def weights(self) -> Weights:
        """The trained files of the registry running the brick."""
        if self._weights is None:
            raise BrickFailed("context", "this call has no models directory: run CPU model bricks through a registry")
        return self._weights

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report `done` out of `total` units of work."""

    def check_cancelled(self) -> None:
        """Raise the cancellation exception if the call was cancelled."""


class WorkerContext(BrickContext):
    """The context of a brick running in an anyio worker thread."""

    def __init__(
        self, on_progress: ProgressCallback | None = None, models: ModelManager | None = None, weights: Weights | None = None
    ):
        super().__init__(models, weights)
        self._on_progress = on_progress

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        if self._on_progress is not None:
            anyio.from_thread.run(self._on_progress, done, total, message)

    def check_cancelled(self) -> None:
        anyio.from_thread.check_cancelled()
