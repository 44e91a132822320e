"""A registered brick: its spec, where it came from, and how it runs.

Most bricks run a backend's function, imported on first use. A composite or remote tool has
no code of its own: its `Runner` does the work (see builder/composite.py, server/remote.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jsonschema

from . import render
from .context import ProgressCallback
from .errors import BrickFailed
from .spec import BrickSpec



class Runner(Protocol):
    """How a tool without code of its own runs: a composite workflow or a remote MCP tool.

    It receives validated wire arguments (image references unresolved) and returns outputs as
    arrays, `StoredImage`s or scalars; the registry checks and stores them like any brick's.
    """

    kind: str
    uses: frozenset[str]
    """Names of the registry's tools it calls (a composite's steps); they cannot be unregistered first."""

    # `registry` is the `Registry` running it (not named here: the registry imports this module)
    def unavailable_reason(self, registry: Any) -> str | None: ...

    async def __call__(
        self, registry: Any, args: dict[str, Any], on_progress: ProgressCallback | None
    ) -> Mapping[str, Any]: ...


@dataclass
class Brick:
    """A registered brick: its spec, where it came from, and its lazily imported code.

    `module_dir`: a directory whose `<module>.py` files hold this brick's implementation (a
    watched schema directory); other modules are imported normally.
    """

    spec: BrickSpec
    source: str
    runner: Runner | None = None
    module_dir: Path | None = None
    input_schema: dict[str, Any] = field(init=False)
    output_schema: dict[str, Any] = field(init=False)
    _validator: jsonschema.protocols.Validator = field(init=False, repr=False)
    _impls: dict[str, tuple[Callable[..., Any], bool]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.input_schema = render.input_schema(self.spec)
        self.output_schema = render.output_schema(self.spec)
        self._validator = jsonschema.Draft202012Validator(self.input_schema)

    @property
    def name(self) -> str:
        return self.spec.name

    def impl(self, backend: str) -> tuple[Callable[..., Any], bool]:
        """The backend's function (imported on first use) and whether it takes a `ctx`."""
        if backend not in self._impls:
            target = self.spec.backends[backend]
            module_name, _, attr = target.partition(":")
            try:
                fn = getattr(self._import(module_name), attr)
            except (ImportError, AttributeError, SyntaxError) as exc:
                raise BrickFailed(self.name, f"cannot load its {backend} implementation '{target}': {exc}") from None
            self._impls[backend] = (fn, _accepts_ctx(fn))
        return self._impls[backend]

    def _import(self, module_name: str) -> Any:
        path = self.module_dir / f"{module_name}.py" if self.module_dir and module_name.isidentifier() else None
        if path is None or not path.is_file():
            return importlib.import_module(module_name)
        # Loaded from the file under a private name and not cached in sys.modules, so an edited
        # file gives the re-registered brick fresh code.
        loader_spec = importlib.util.spec_from_file_location(f"_lego_edit_brick_{self.name}_{module_name}", path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        return module


def _accepts_ctx(fn: Callable[..., Any]) -> bool:
    try:
        return "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
