"""Where bricks come from besides the built-in schemas, kept in sync while the server runs.

- A **schema directory** (`--schemas DIR`): `*.json` schema files, and optionally the Python
  modules they name as `<module>.py` beside them. `sync` compares file stamps with the last
  sync: added, changed and removed files take effect, and an edited module re-registers the
  directory's bricks with fresh code.
- **Entry points** in the group `lego_edit.bricks` of installed packages: each names a package
  (or a directory path) holding schema files; the package's own modules hold the code.

A bad file never stops a running server: it is reported in `problems` (and logged) and its
brick stays out until the file is fixed. At start-up (`strict=True`) a bad file in a schema
directory is an error instead; a broken installed plugin is only reported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.resources
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .brick import Brick
from .errors import SchemaError
from .spec import BrickSpec, load_spec


class Catalogue(Protocol):
    """What a source changes: the registry's bricks (`Registry` is one)."""

    def __contains__(self, name: str) -> bool: ...

    def get(self, name: str) -> Brick: ...

    def update(self, remove: Iterable[str], add: Iterable[Brick], *, strict: bool = False) -> dict[str, str]: ...


log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lego_edit.bricks"


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Source (file or entry point) -> why it was not loaded."""

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def merge(self, other: Changes) -> Changes:
        self.added += other.added
        self.changed += other.changed
        self.removed += other.removed
        self.problems.update(other.problems)
        return self


class _Tracked:
    """Bricks registered from one source, replaced as a group when the source changes."""

    def __init__(self) -> None:
        self.bricks: dict[str, str] = {}  # file or entry point -> brick name
        self.problems: dict[str, str] = {}

    def replace(
        self, registry: Catalogue, wanted: dict[str, BrickSpec], failed: dict[str, str], *,
        module_dir: Path | None = None, new_code: bool = False, strict: bool = False,
    ) -> Changes:
        """Make the registry hold exactly `wanted` (key -> spec) from this source, in one step.

        Unchanged bricks are left alone; changed ones are swapped for their new version.
        """
        current = {key: registry.get(name) for key, name in self.bricks.items() if name in registry}
        keep = {key for key, brick in current.items() if not new_code and wanted.get(key) == brick.spec}
        old = [current[key].name for key in current if key not in keep]
        fresh = [Brick(spec, key, module_dir=module_dir) for key, spec in wanted.items() if key not in keep]
        changes = Changes(problems={**failed, **registry.update(old, fresh, strict=strict)})
        added = [b for b in fresh if b.source not in changes.problems]
        self.bricks = {key: current[key].name for key in keep} | {b.source: b.name for b in added}
        for brick in added:
            (changes.changed if brick.name in old else changes.added).append(brick.name)
        changes.removed = [name for name in old if name not in self.bricks.values()]
        for key, reason in changes.problems.items():
            if self.problems.get(key) != reason:
                log.warning("brick schema %s not loaded: %s", key, reason)
        self.problems = changes.problems
        return changes


class SchemaDir(_Tracked):
    """One `--schemas` directory: its `*.json` schemas and the `*.py` modules beside them."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._stamp: dict[str, tuple[int, int]] | None = None

    def sync(self, registry: Catalogue, *, strict: bool = False) -> Changes:
        """Reload the directory when any schema or module file was added, changed or removed."""
        if not self.path.is_dir():
            if strict:
                raise SchemaError(str(self.path), "schema directory does not exist")
            return self.replace(registry, {}, {str(self.path): "schema directory does not exist"})
        stamp = {}
        for p in sorted([*self.path.glob("*.json"), *self.path.glob("*.py")]):
            with contextlib.suppress(FileNotFoundError):  # deleted between glob and stat
                st = p.stat()
                stamp[str(p)] = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp and not self.problems:  # a problem may have gone (e.g. a name freed)
            return Changes()
        previous, self._stamp = self._stamp or {}, stamp
        new_code = any(k.endswith(".py") and previous.get(k) != v for k, v in stamp.items())
        wanted, failed = {}, {}
        for key in (k for k in stamp if k.endswith(".json")):
            try:
                wanted[key] = load_spec(Path(key))
            except SchemaError as exc:
                if strict:
                    raise
                failed[key] = exc.reason
        return self.replace(registry, wanted, failed, module_dir=self.path, new_code=new_code, strict=strict)


class EntryPoints(_Tracked):
    """Bricks of installed plugin packages; rescanned so a package installed later shows up."""

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        super().__init__()
        self.group = group
        self._seen: frozenset[tuple[str, str, str]] | None = None
        self._paths: tuple[tuple[str, int], ...] | None = None

    def sync(self, registry: Catalogue, *, strict: bool = False) -> Changes:
        """Installed plugins are never strict: a broken one is reported, never fatal.

        Reading every dist-info folder costs ~10 ms, so it happens only when an import path
        changed: installing or removing a package adds or removes a folder in site-packages,
        which changes that directory's modification time (a few stats, microseconds)."""
        paths = _path_stamps()
        if paths == self._paths and not self.problems:  # a broken plugin is retried until it loads
            return Changes()
        self._paths = paths
        points = importlib.metadata.entry_points(group=self.group)  # reads the dist-info folders afresh
        seen = frozenset((ep.name, ep.value, getattr(ep.dist, "version", "") or "") for ep in points)
        if seen == self._seen and not self.problems:  # a broken plugin is retried until it loads
            return Changes()
        self._seen = seen
        importlib.invalidate_caches()  # a package installed since the last scan must be importable
        wanted, failed = {}, {}
        for ep in sorted(points, key=lambda e: e.name):
            key = f"entry point {ep.name} = {ep.value}"
            try:
                for path in _schema_files(ep.load()):
                    wanted[f"{key}: {path.name}"] = load_spec(path)
            except SchemaError as exc:
                failed[key] = f"{exc.source}: {exc.reason}"
            except Exception as exc:  # a broken plugin is reported; it never stops the server
                failed[key] = f"cannot load: {type(exc).__name__}: {exc}"
        return self.replace(registry, wanted, failed)


def _path_stamps() -> tuple[tuple[str, int], ...]:
    """Each import path with its directory's modification time (0 when it is not a directory)."""
    stamps = []
    for entry in sys.path:
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            stamps.append((entry, 0))
    return tuple(stamps)


def _schema_files(target: Any) -> list[Path]:
    """The schema files an entry point names: a package's `*.json` files, or a directory's."""
    if isinstance(target, str | Path):
        directory = Path(target)
    elif hasattr(target, "__path__"):  # a package (a plain module's folder would be site-packages)
        directory = Path(str(importlib.resources.files(target.__name__)))
    else:
        raise SchemaError(repr(target), "an entry point must name a package or a directory of schema files")
    if not directory.is_dir():
        raise SchemaError(str(directory), "schema directory does not exist")
    return sorted(directory.glob("*.json"))


class Sources:
    """All the syncable sources of one registry: its schema directories and the entry points."""

    def __init__(self, registry: Catalogue, schema_dirs: tuple[Path, ...] = (), *, entry_points: bool = True):
        self.registry = registry
        self.sources: list[SchemaDir | EntryPoints] = [SchemaDir(d) for d in schema_dirs]
        if entry_points:
            self.sources.append(EntryPoints())

    def sync(self, *, strict: bool = False) -> Changes:
        changes = Changes()
        for source in self.sources:
            changes.merge(source.sync(self.registry, strict=strict))
        return changes

    @property
    def problems(self) -> dict[str, str]:
        return {k: v for s in self.sources for k, v in s.problems.items()}
