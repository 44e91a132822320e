"""The model manager: every GPU brick gets its models here.

- Components load lazily, by key, through `from_pretrained(id_or_path)` (the loader is the
  brick's; the manager caches, counts and evicts).
- Device and dtype come from the configuration.
- Beyond the memory budget the least recently used components are evicted (moved to the CPU
  with `offload`, else freed).
- One FLUX Fill base serves every FLUX Fill brick: task LoRAs are loaded once as named
  adapters and switched, never reloading the base. The FLUX pipelines (Fill, Canny, Kontext)
  share one copy of their text encoders (`share_text_encoders`); the budget counts it once,
  and evicting one pipeline leaves it with the others.
- GPU work is serialised by one queue (a lock) per device, while CPU bricks keep running.
- Out of memory: evict everything else, retry once, then fail with a clear error.

torch is imported only when a component is first loaded.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import BrickFailed
from .config import ModelConfig, ModelEntry

Loader = Callable[[ModelEntry, Any, Any], Any]  # (entry, torch device, torch dtype) -> component


class ModelManager:
    def __init__(self, config: ModelConfig):
        self.config = config
        self.loads: Counter[str] = Counter()  # how often each key was loaded (for tests and logs)
        self._cache: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # key -> (component, bytes)
        self._adapters: set[str] = set()
        self._lock = threading.RLock()
        self._queues: dict[str, threading.Lock] = {}

    # -- device -----------------------------------------------------------------
    @property
    def device(self) -> Any:
        import torch

        wanted = self.config.runtime.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        return torch.device(wanted)

    @property
    def dtype(self) -> Any:
        import torch

        wanted = self.config.runtime.dtype
        if wanted == "auto":
            return {"cuda": torch.bfloat16, "mps": torch.float16}.get(self.device.type, torch.float32)
        return getattr(torch, wanted)

    @contextmanager
    def queue(self) -> Iterator[None]:
        """Hold the device: one model call at a time per device."""
        name = str(self.device)
        with self._lock:
            lock = self._queues.setdefault(name, threading.Lock())
        with lock:
            yield

    # -- components -------------------------------------------------------------
    def load(self, key: str, loader: Loader) -> Any:
        """The component `key`, loaded on first use with `loader`, kept until evicted."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                component, size = self._cache[key]
                if self.config.runtime.offload:
                    _move(component, self.device)
                return component
            entry = self.config.entry(key)
            if not entry.id:
                raise BrickFailed(key, f"no model is configured for '{key}'")
            try:
                component = loader(entry, self.device, self.dtype)
            except OSError as exc:  # missing files, no network with HF_HUB_OFFLINE, gated repos
                raise BrickFailed(key, f"cannot load '{entry.id}': {exc}") from None
            self.loads[key] += 1
            self._cache[key] = (component, 0)
            self._recount()
            self._evict_over_budget(keep=key)
            return component

    def _recount(self) -> None:
        """Each entry's bytes, a tensor shared by several (text encoders) counted once: with the
        least recently used entry holding it, which is the first to go."""
        held: set[int] = set()
        for key, (component, _) in self._cache.items():
            tensors = [t for m in _modules(component) for t in (*m.parameters(), *m.buffers())]
            self._cache[key] = (component, sum(t.numel() * t.element_size() for t in tensors if id(t) not in held))
            held |= {id(t) for t in tensors}

    def usage(self) -> dict[str, int]:
        """Bytes each loaded component counts against the budget, least recently used first."""
        with self._lock:
            return {key: size for key, (_, size) in self._cache.items()}

    def shared_components(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The parts `names` of a loaded pipeline that has them all (e.g. its text encoders), or {}."""
        with self._lock:
            for component, _ in self._cache.values():
                parts = getattr(component, "components", None) or {}
                if all(parts.get(n) is not None for n in names):
                    return {n: parts[n] for n in names}
        return {}

    def flux_fill(self, adapter: str | None, loader: Loader) -> Any:
        """The shared FLUX Fill pipeline with LoRA `adapter` (a model key such as 'lora_rcm') active, or none."""
        pipe = self.load("flux_fill", loader)
        with self._lock:
            if adapter is not None and adapter not in self._adapters:
                entry = self.config.entry(adapter)
                kwargs = {k: v for k, v in (("subfolder", entry.subfolder), ("weight_name", entry.weight_name)) if v}
                try:
                    pipe.load_lora_weights(entry.id, adapter_name=adapter, **kwargs)
                except (OSError, ValueError) as exc:
                    raise BrickFailed(adapter, f"cannot load LoRA '{entry.id}': {exc}") from None
                self._adapters.add(adapter)
                self.loads[adapter] += 1
            if adapter is None:
                if self._adapters:
                    pipe.disable_lora()
            else:
                pipe.enable_lora()
                pipe.set_adapters([adapter], adapter_weights=[1.0])
        return pipe

    def evict(self, key: str) -> None:
        with self._lock:
            component, _ = self._cache.pop(key)
            if key == "flux_fill":
                self._adapters.clear()
            if self.config.runtime.offload:  # parts another loaded component shares stay where they are
                in_use = {id(m) for c, _ in self._cache.values() for m in _modules(c)}
                for module in _modules(component):
                    if id(module) not in in_use:
                        module.to("cpu")
            del component
            self._recount()
        _free()

    def run(self, fn: Callable[[], Any], *, what: str) -> Any:
        """Run GPU work on the device queue; out of memory evicts the other components and retries once."""
        import torch

        with self.queue():
            try:
                return fn()
            except torch.OutOfMemoryError:
                for key in list(self._cache)[:-1]:
                    self.evict(key)
                _free()
            try:
                return fn()
            except torch.OutOfMemoryError as exc:
                _free()
                raise BrickFailed(what, f"out of GPU memory even after freeing the other models: {str(exc).splitlines()[0]}") from None

    def _evict_over_budget(self, keep: str) -> None:
        budget = self.config.runtime.memory_budget_gb * 2**30
        if budget <= 0:
            return
        while sum(size for _, size in self._cache.values()) > budget and len(self._cache) > 1:
            oldest = next(k for k in self._cache if k != keep)
            self.evict(oldest)


def _modules(component: Any) -> list[Any]:
    """The torch modules of a model, a pipeline (its components) or a tuple of them."""
    import torch

    parts = component if isinstance(component, tuple | list) else (component,)
    modules = []
    for part in parts:
        inner = [m for m in getattr(part, "components", {}).values() if isinstance(m, torch.nn.Module)]
        modules += inner or ([part] if isinstance(part, torch.nn.Module) else [])
    return modules


def _move(component: Any, device: Any) -> None:
    parts = component if isinstance(component, tuple | list) else (component,)
    for part in parts:
        if hasattr(part, "to"):
            part.to(device)


def _free() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
