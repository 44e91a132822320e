"""Run-time settings: defaults, overridden by `LEGO_EDIT_*` environment variables, then by the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lego-edit-mcp"


def _default_cache_dir() -> Path:
    return _cache_home() / "images"


def _default_models_dir() -> Path:
    return _cache_home() / "models"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "lego-edit-mcp"


@dataclass(frozen=True)
class Settings:
    allowed_roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd(),))
    """File inputs must resolve (symlinks followed) under one of these directories."""
    max_pixels: int = 40_000_000
    """Largest image accepted, in pixels (width x height); also the decompression-bomb guard."""
    max_bytes: int = 50 * 1024 * 1024
    """Largest encoded image accepted (file, data URI or base64), in bytes."""
    memory_budget: int = 1024 * 1024 * 1024
    """Decoded images kept in memory, in bytes; older ones are spilled to `cache_dir` as PNG."""
    disk_budget: int = 4 * 1024 * 1024 * 1024
    """Spilled PNGs kept in `cache_dir`, in bytes; the least recently used are deleted beyond it."""
    cache_dir: Path = field(default_factory=_default_cache_dir)
    output_dir: Path | None = None
    """When set, every image result is also saved here at full resolution."""
    thumbnail_side: int = 512
    """Long side of the inline thumbnail returned with each image result; 0 turns thumbnails off."""
    thumbnail_bytes: int = 100_000
    schema_dirs: tuple[Path, ...] = ()
    """Extra directories of brick schema files (and their modules), loaded after the built-in ones
    and watched while serving."""
    watch_interval: float = 1.0
    """Seconds between checks of the schema directories and plugin entry points; 0 turns watching off."""
    state_dir: Path = field(default_factory=_default_state_dir)
    """Where tools added with register_tool are kept, to be registered again after a restart."""
    remote_servers: tuple[str, ...] = ()
    """MCP servers whose tools register_tool may proxy, as NAME=URL or NAME=COMMAND
    (in LEGO_EDIT_REMOTE_SERVERS, separated by ';')."""
    backend: str = "auto"
    """'auto' picks the first backend a brick lists that can run here; 'cpu' forces CPU backends."""
    models_dir: Path = field(default_factory=_default_models_dir)
    """Trained weights of the CPU bricks, put there by `lego-edit-mcp fetch-models`."""
    models_file: Path | None = None
    """A TOML file overriding the GPU bricks' model configuration (see bricks/gpu/models.toml)."""
    device: str | None = None
    """Device of the GPU bricks (auto, cuda, mps, cpu); overrides the model configuration's."""
    builder: str = "auto"
    """Planner of `lego_edit`: auto, transformers, openai, sampling or rules."""
    builder_model: str | None = None
    """Builder MLLM (hub id or path): overrides the model configuration's `builder` entry, which the
    transformers planner shares with ADD-PRED and CMI-PRED."""
    builder_subfolder: str | None = None
    builder_template: Path | None = None
    """A prompt template file replacing the built-in Builder prompt."""
    openai_url: str | None = None
    """Base URL of an OpenAI-compatible endpoint (e.g. vLLM serving the Builder), for the openai planner."""
    openai_model: str | None = None
    max_replans: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `LEGO_EDIT_<FIELD>` variables, then `overrides` (those not None)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"LEGO_EDIT_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw.replace("_", ""))
        if kind == "float":
            return float(raw)
        if "tuple[str" in kind:
            return tuple(p.strip() for p in raw.split(";") if p.strip())
        if "tuple[Path" in kind:
            return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p)
        if kind.startswith("pathlib.Path") or kind.startswith("Path"):
            return Path(raw).expanduser()
        return raw
    except ValueError:
        raise ValueError(f"LEGO_EDIT_{name.upper()}={raw!r} is not a valid {kind}") from None
