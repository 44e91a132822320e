"""The front's side of backend = "ray": a brick's compute is a request to its family's deployment.

Validation, references and storage stay in the front (`Registry._run`); only the brick's
function runs in a replica (`bricks.ray_serve`). The request streams the replica's events back:
progress goes to the caller's progress, and a cancelled call cancels the request (the replica's
heartbeat lets the front notice within HEARTBEAT seconds even while a brick is quiet). A replica
that dies mid-call fails the call with a clear error; Serve starts a new one for later calls.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .deployments import CPU, adapter_of, deployment_name, family_of
from .errors import BrickFailed, InvalidInput

if TYPE_CHECKING:
    from .brick import Brick
    from .context import BrickContext

DESCRIBE_EVERY = 30.0  # seconds an availability answer is trusted


class RayCompute:
    def __init__(self, address: str | None, app: str, *, cpu_bricks: bool = True):
        self.address = address
        self.app = app
        self.cpu_bricks = cpu_bricks
        self._lock = threading.Lock()
        self._handles: dict[str, Any] = {}
        self._described: dict[str, tuple[float, dict[str, tuple[str | None, str]]]] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ray-describe")

    def runs(self, brick: Brick) -> bool:
        """Whether `brick` runs on Ray (code bricks; those without a model only with cpu_bricks)."""
        return brick.runner is None and (self.cpu_bricks or family_of(brick) != CPU)

    def _handle(self, family: str) -> Any:
        with self._lock:
            if family not in self._handles:
                import ray
                from ray import serve

                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False)
                self._handles[family] = serve.get_deployment_handle(deployment_name(family), app_name=self.app)
            return self._handles[family]

    def backend_for(self, brick: Brick) -> tuple[str | None, str]:
        """What the family's replicas say of the brick, asked at most every DESCRIBE_EVERY seconds."""
        family = family_of(brick)
        seen, answers = self._described.get(family, (0.0, {}))
        if brick.name not in answers or time.monotonic() - seen > DESCRIBE_EVERY:
            try:  # in a thread of its own: a Serve handle refuses to block an event loop's thread, where this may run
                answers = self._pool.submit(lambda: self._handle(family).describe.remote([brick.name]).result(timeout_s=30)).result()
            except Exception as exc:  # no such deployment, no cluster: say so, as any unavailable brick does
                return None, f"its Ray Serve deployment '{deployment_name(family)}' cannot be reached ({type(exc).__name__}: {exc})"
            self._described[family] = (time.monotonic(), {**self._described.get(family, (0, {}))[1], **answers})
        backend, why = self._described[family][1][brick.name]
        return (backend, "") if backend else (None, f"in its Ray Serve deployment: {why}")

    def run(self, brick: Brick, backend: str, inputs: dict[str, Any], ctx: BrickContext) -> Any:
        """The brick's raw outputs, computed by a replica (in the calling worker thread)."""
        from ray.exceptions import RayError

        handle = self._handle(family_of(brick)).options(stream=True, multiplexed_model_id=adapter_of(brick) or "")
        stream = handle.run.remote(brick.name, backend, inputs)
        try:
            for event in stream:
                ctx.check_cancelled()
                kind = event[0]
                if kind == "progress":
                    ctx.progress(*event[1:])
                elif kind == "result":
                    return event[1]
                elif kind == "invalid":
                    raise InvalidInput(event[1], param=event[2])
                elif kind == "failed":
                    raise BrickFailed(brick.name, event[1])
                elif kind == "cancelled":
                    raise BrickFailed(brick.name, "its replica was told to stop")
        except BaseException as exc:
            stream.cancel()  # a cancelled call, or anything else: the replica stops at its next step
            if isinstance(exc, RayError):
                raise BrickFailed(brick.name, f"its Ray Serve replica failed ({type(exc).__name__}): {_first_line(exc)}; try again") from None
            raise
        raise BrickFailed(brick.name, "its Ray Serve replica ended the call without a result; try again")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
