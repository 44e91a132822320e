"""The registry: every brick, loaded from its schema, called through one path.

`Registry.call(name, args)` is the only way a brick runs, for an MCP tool call and a
workflow step alike: it validates the arguments once against the schema, resolves image
references, runs the brick in a worker thread, checks its outputs and stores the images.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.resources
import logging
import math
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import jsonschema
import numpy as np

from . import backends
from .brick import Brick, Runner
from .cpu.weights import Weights
from .context import BrickContext, ProgressCallback, WorkerContext
from .errors import BrickFailed, InvalidInput, SchemaError, UnknownTool
from .gpu.config import ModelConfig
from .gpu.manager import ModelManager
from .images import as_image, as_mask, binary
from .ray_compute import RayCompute
from .refs import load_reference
from .settings import RegistrySettings
from .shared_store import SharedTier
from .sources import SchemaDir, Sources
from .spec import IMAGE_TYPES, BrickSpec
from .store import ImageStore, StoredImage
from .types import TYPES

log = logging.getLogger(__name__)


class Registry:
    def __init__(
        self, store: ImageStore, settings: RegistrySettings, models: ModelManager, *, reserved: Mapping[str, str] | None = None
    ):
        """`settings`: its `store` section limits inputs, its `bricks` section picks the backend, the
        CPU weights and the schema directories. `models`: the manager the GPU bricks load through
        (they get it as `ctx.models`). `reserved`: names other tools hold (the server's), with what
        holds them; refused to every brick."""
        self.store = store
        self.settings = settings
        self.models = models
        self.weights = Weights(settings.bricks.models_dir)
        """The CPU bricks' trained files (`ctx.weights`), shared with the rules planner."""
        # (name -> brick, builder id -> name): replaced whole, never mutated, so readers on any
        # thread see one consistent pair; writers (the event loop, the watcher's thread) lock.
        self._lock = threading.Lock()
        self._maps: tuple[dict[str, Brick], dict[str, str]] = ({}, {})
        self.reserved: dict[str, str] = dict(reserved or {})
        self.sources = Sources(self, settings.bricks.schema_dirs)
        """Schema directories and plugin entry points, synced at start-up and while serving."""
        b = settings.bricks
        self.compute = RayCompute(b.ray_address, b.ray_app, cpu_bricks=not b.ray_local_cpu_bricks) if b.backend == "ray" else None
        """Where code bricks compute with backend = "ray" (None: here, in a worker thread)."""

    @classmethod
    def from_settings(cls, settings: RegistrySettings, reserved: Mapping[str, str] | None = None) -> Registry:
        """A registry with its own store and model manager, the built-in schemas, the settings'
        schema directories and plugins.

        `reserved`: names other tools hold (the server's), refused to every brick."""
        s = settings.store
        shared = SharedTier(s.shared_store, s.shared_budget) if s.shared_store else None
        store = ImageStore(s.cache_dir, memory_budget=s.memory_budget, disk_budget=s.disk_budget, shared=shared)
        registry = cls(store, settings, ModelManager(ModelConfig.from_settings(settings.bricks)), reserved=reserved)
        registry.load_builtin()
        registry.sources.sync(strict=True)
        return registry

    @property
    def model_config(self) -> ModelConfig:
        return self.models.config

    # -- loading -----------------------------------------------------------------
    def load_builtin(self) -> None:
        root = importlib.resources.files("schemas")
        with importlib.resources.as_file(root) as path:
            self.load_dir(Path(path))

    def load_dir(self, directory: Path) -> None:
        """Add every `*.json` schema in `directory` once, unwatched; a bad file or a taken name
        raises `SchemaError` and adds nothing."""
        SchemaDir(directory).sync(self, strict=True)

    def add(self, spec: BrickSpec, *, source: str, runner: Runner | None = None, module_dir: Path | None = None) -> Brick:
        """Register a brick; a name or builder id already taken raises `SchemaError`."""
        brick = Brick(spec, source, runner, module_dir)
        self.update((), [brick], strict=True)
        return brick

    def remove(self, name: str) -> Brick:
        brick = self.get(name)
        self.update([brick.name], ())
        return brick

    def update(self, remove: Iterable[str], add: Iterable[Brick], *, strict: bool = False) -> dict[str, str]:
        """Remove and add bricks in one step: readers never see a replaced brick missing.

        A brick whose name or builder id is taken is left out; returns its source -> why
        (`strict`: raises `SchemaError` and changes nothing)."""
        refused = {}
        with self._lock:
            gone = set(remove)
            bricks = {k: v for k, v in self._maps[0].items() if k not in gone}
            by_id = {k: v for k, v in self._maps[1].items() if v not in gone}
            for brick in add:
                try:
                    self._check_free(brick.spec, brick.source, bricks, by_id)
                except SchemaError as exc:
                    if strict:
                        raise
                    refused[brick.source] = exc.reason
                    continue
                bricks[brick.name] = brick
                by_id[brick.spec.builder_id] = brick.name
            self._maps = (bricks, by_id)
        return refused

    def taken_by(self, key: str) -> str | None:
        """What holds `key` as a name or builder id ("tool 'adjust' (its schema file)"), or None."""
        return self._holder(key, *self._maps)

    def _holder(self, key: str, bricks: dict[str, Brick], by_id: dict[str, str]) -> str | None:
        if key in self.reserved:
            return self.reserved[key]
        brick = bricks.get(by_id.get(key, key))
        return None if brick is None else f"tool '{brick.name}' ({brick.source})"

    def _check_free(self, spec: BrickSpec, source: str, bricks: dict[str, Brick], by_id: dict[str, str]) -> None:
        for key in (spec.name, spec.builder_id):
            if holder := self._holder(key, bricks, by_id):
                raise SchemaError(source, f"'{key}' is already taken by {holder}")

    def dependents(self, name: str) -> list[str]:
        """Tools whose runner calls `name` (a composite's steps)."""
        return [b.name for b in self._maps[0].values() if b.runner is not None and name in b.runner.uses]

    # -- lookup ------------------------------------------------------------------
    def get(self, name: str) -> Brick:
        """A brick by MCP name or builder id; unknown names suggest the closest."""
        bricks, by_id = self._maps
        key = by_id.get(name, name)
        if key in bricks:
            return bricks[key]
        close = difflib.get_close_matches(name, [*bricks, *by_id], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownTool(f"unknown tool '{name}'{hint}")

    def __contains__(self, name: str) -> bool:
        bricks, by_id = self._maps
        return name in bricks or name in by_id

    def all(self) -> list[Brick]:
        return list(self._maps[0].values())

    def available(self) -> list[Brick]:
        return [b for b in self.all() if self.backend_for(b)[0] is not None]

    def backend_for(self, brick: Brick) -> tuple[str | None, str]:
        """(the backend that will run the brick, '') or (None, why none can)."""
        if brick.runner is not None:
            why = brick.runner.unavailable_reason(self)
            return (brick.runner.kind, "") if why is None else (None, why)
        if self.compute is not None and self.compute.runs(brick):
            return self.compute.backend_for(brick)
        reasons = []
        for backend in brick.spec.backends:
            reason = backends.unavailable_reason(
                brick.spec, backend, self.settings.bricks.backend, self.model_config, brick.module_dir, self.weights
            )
            if reason is None:
                return backend, ""
            reasons.append(f"{backend}: {reason}")
        return None, "; ".join(reasons)

    # -- calling -----------------------------------------------------------------
    async def call(
        self, name: str, args: Mapping[str, Any] | None, *, on_progress: ProgressCallback | None = None,
        addressable: bool | Collection[str] = True,
    ) -> dict[str, Any]:
        """Run a brick on wire arguments; image outputs come back as `StoredImage`s.

        Everything after the lookup (decoding inputs, the brick, storing outputs) runs in one
        worker thread, so the event loop never waits on pixels. `addressable`: which image
        outputs a client may see (True: all; a collection: those named). They get content ids;
        the others are a workflow's intermediates and get cheap random ids (see `ImageStore.put`).
        """
        brick, backend = self._runnable(name)
        if brick.runner is not None:
            return await self._run_runner(brick, brick.runner, args, on_progress, addressable)
        ctx = WorkerContext(on_progress, self.models, self.weights)
        return await anyio.to_thread.run_sync(self._run, brick, backend, args, ctx, addressable)

    def call_here(
        self, name: str, args: Mapping[str, Any] | None, *, on_progress: ProgressCallback | None = None,
        addressable: bool | Collection[str] = True,
    ) -> dict[str, Any]:
        """`call` in the calling thread, an anyio worker thread, for a code brick: runners are coroutines."""
        brick, backend = self._runnable(name)
        if brick.runner is not None:
            raise TypeError(f"{brick.name} runs as a {brick.runner.kind}: await call() instead")
        return self._run(brick, backend, args, WorkerContext(on_progress, self.models, self.weights), addressable)

    def _runnable(self, name: str) -> tuple[Brick, str]:
        brick = self.get(name)
        backend, why = self.backend_for(brick)
        if backend is None:
            raise InvalidInput(f"not available on this server ({why})", brick=brick.name)
        return brick, backend

    async def _run_runner(
        self, brick: Brick, runner: Runner, args: Mapping[str, Any] | None, on_progress: ProgressCallback | None,
        addressable: bool | Collection[str] = True,
    ) -> dict[str, Any]:
        with _brick_errors(brick.name):
            raw = await runner(self, _checked_args(brick, args), on_progress)
        return await anyio.to_thread.run_sync(self._store_outputs, brick, raw, addressable)

    def _run(
        self, brick: Brick, backend: str, args: Mapping[str, Any] | None, ctx: BrickContext,
        addressable: bool | Collection[str] = True,
    ) -> dict[str, Any]:
        with _brick_errors(brick.name):
            inputs = self._prepare(brick, args)
            if self.compute is not None and self.compute.runs(brick):
                raw = self.compute.run(brick, backend, inputs, ctx)
            else:
                fn, wants_ctx = brick.impl(backend)
                raw = fn(**inputs, **({"ctx": ctx} if wants_ctx else {}))
        return self._store_outputs(brick, raw, addressable)

    def _prepare(self, brick: Brick, args: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _checked_args(brick, args)
        inputs: dict[str, Any] = {}
        size: tuple[str, tuple[int, int]] | None = None
        for p in brick.spec.inputs:
            value = args.get(p.name, p.default)
            if value is not None and TYPES[p.type].image:
                value = self.resolve(value, p.type, param=p.name)
                if brick.spec.same_size:
                    if size is None:
                        size = (p.name, value.shape[:2])
                    elif value.shape[:2] != size[1]:
                        h, w = value.shape[:2]
                        raise InvalidInput(
                            f"is {w}x{h} but `{size[0]}` is {size[1][1]}x{size[1][0]}; they must match "
                            f"(a mask made for this image, e.g. the mask output of a segmentation tool run on `{size[0]}`)",
                            param=p.name,
                        )
            elif value is not None:
                value = TYPES[p.type].coerce(value)
            inputs[p.name] = value
        return inputs

    def resolve(self, ref: str | StoredImage, kind: str, *, param: str | None = None) -> np.ndarray:
        """The image or mask a reference (or a workflow's stored value) names, as bricks take it:
        uint8 RGB(A), or a 0/255 mask. A bad reference is `InvalidInput` naming `param`."""
        try:
            array = self.store.get(ref.id) if isinstance(ref, StoredImage) else load_reference(ref, store=self.store, settings=self.settings.store)
        except InvalidInput as exc:
            raise exc.located(param=param) from None
        if kind == "Mask":  # a 2-D array comes from the store, where masks are binary already
            return array if array.ndim == 2 else as_mask(array)
        return as_image(array)

    def _store_outputs(self, brick: Brick, raw: Any, addressable: bool | Collection[str] = True) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise BrickFailed(brick.name, f"returned {type(raw).__name__}, not a dict of outputs")
        declared = {o.name: o for o in brick.spec.outputs}
        unknown = set(raw) - set(declared)
        if unknown:
            raise BrickFailed(brick.name, f"returned undeclared outputs {sorted(unknown)}")
        result: dict[str, Any] = {}
        for name, out in declared.items():
            value = raw.get(name)
            if value is None:
                if not out.optional:
                    raise BrickFailed(brick.name, f"returned no '{name}'")
                continue
            seen = addressable if isinstance(addressable, bool) else name in addressable
            result[name] = _check_output(brick.name, out.type, name, value, self.store, self.settings.store.max_pixels, seen)
        return result


@contextlib.contextmanager
def _brick_errors(name: str) -> Iterator[None]:
    """Caller-fixable errors get the tool's name; anything unexpected becomes `BrickFailed`
    (cancellation is a BaseException and passes through)."""
    try:
        yield
    except InvalidInput as exc:
        raise exc.located(brick=name) from None
    except BrickFailed:
        raise
    except Exception as exc:
        log.exception("tool %s failed", name)
        # An OSError's text names a server path: the caller gets only what went wrong.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BrickFailed(name, f"{type(exc).__name__}: {reason}") from exc


def _checked_args(brick: Brick, args: Mapping[str, Any] | None) -> dict[str, Any]:
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise InvalidInput("arguments must be an object")
    # null means "not given": the workflow format writes absent optional inputs as null
    args = {k: v for k, v in args.items() if v is not None}
    _validate(brick, {k: v.uri if isinstance(v, StoredImage) else v for k, v in args.items()})  # a workflow's image: as on the wire
    if problem := brick.spec.input_set_problem(set(args)):
        raise InvalidInput(problem[1], param=problem[0])
    return args


def _validate(brick: Brick, args: dict[str, Any]) -> None:
    """Validate against the rendered input schema; the first error names its parameter.

    NaN and infinities are refused first: they pass every range check (NaN compares false)."""
    for name, value in args.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"must be a finite number (got {value})", param=name)
    errors = sorted(brick._validator.iter_errors(args), key=lambda e: (list(e.path), e.validator))
    if not errors:
        _check_types(brick, args)
        return
    err = errors[0]
    if err.validator == "required":
        missing = [n for n in err.validator_value if n not in args]
        raise InvalidInput("is required but missing", param=missing[0] if missing else None)
    if err.validator == "additionalProperties":
        allowed = [p.name for p in brick.spec.inputs]
        extra = sorted(set(args) - set(allowed))
        raise InvalidInput(f"unknown parameter; this tool takes: {', '.join(allowed)}", param=extra[0] if extra else None)
    param = str(err.path[0]) if err.path else None
    raise InvalidInput(_describe_error(err), param=param)


def _check_types(brick: Brick, args: dict[str, Any]) -> None:
    """What the JSON Schema cannot say of a value type: its own literal check (references aside)."""
    for p in brick.spec.inputs:
        kind = TYPES[p.type]
        if p.name in args and not kind.image and not kind.accepts(args[p.name]):
            raise InvalidInput(f"expected {kind.expects}, got {args[p.name]!r}", param=p.name)


def _describe_error(err: jsonschema.ValidationError) -> str:
    value = err.instance
    shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
    match err.validator:
        case "minimum":
            return f"must be >= {err.validator_value} (got {shown})"
        case "maximum":
            return f"must be <= {err.validator_value} (got {shown})"
        case "enum":
            return f"must be one of {', '.join(map(str, err.validator_value))} (got {shown})"
        case "type":
            return f"must be of type {err.validator_value} (got {shown})"
    return err.message


def _check_output(
    brick: str, kind: str, name: str, value: Any, store: ImageStore, max_pixels: int, addressable: bool = True
) -> Any:
    if kind in IMAGE_TYPES:
        if isinstance(value, StoredImage):  # a composite's step already stored it
            return value
        if not isinstance(value, np.ndarray):
            raise BrickFailed(brick, f"output '{name}' is {type(value).__name__}, not an array")
        if value.shape[0] * value.shape[1] > max_pixels:  # e.g. an outpainting canvas from large ratios
            h, w = value.shape[:2]
            raise InvalidInput(f"output '{name}' would be {w}x{h}, over the limit of {max_pixels:,} pixels", brick=brick)
        if kind == "Mask":
            if value.ndim != 2:
                raise BrickFailed(brick, f"output mask '{name}' has shape {value.shape}, expected (H, W)")
            value = binary(value if value.dtype == bool else value > 127)
        elif value.dtype != np.uint8 or value.ndim != 3 or value.shape[2] not in (3, 4):
            raise BrickFailed(brick, f"output image '{name}' has shape {value.shape} {value.dtype}, expected uint8 RGB(A)")
        stored: StoredImage = store.put(value, addressable=addressable)
        return stored
    try:
        return TYPES[kind].coerce(value)
    except (TypeError, ValueError):  # e.g. a remote tool's "abc" for a Float
        raise BrickFailed(brick, f"output '{name}' is {value!r}, not a {'number' if TYPES[kind].numeric else kind}") from None


__all__ = ["Brick", "BrickContext", "Registry", "Runner"]
