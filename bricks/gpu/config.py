"""The model configuration of the GPU bricks: packaged defaults, the user's TOML file, then settings.

Every component has a key (`flux_fill`, `lora_rcm`, `sam`, ...). An entry is *configured* when
the user's file or a setting (`model`, `builder_model`) names it; the packaged defaults alone do
not count. That is what lets CPU-only runs use GPU bricks on purpose (tiny test models) and never
by accident.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SchemaError

if TYPE_CHECKING:
    from ..settings import BrickSettings

RES_MODELS = {"grounded_sam": ("grounding", "sam"), "clipseg": ("clipseg",)}
"""What the schema's model key `res` stands for, by `runtime.res_model`."""


@dataclass(frozen=True)
class ModelEntry:
    key: str
    id: str
    subfolder: str | None = None
    weight_name: str | None = None
    configured: bool = False


class Runtime(BaseModel):
    """The `[runtime]` table (bricks/gpu/models.toml says what each key does)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    memory_budget_gb: float = Field(0.0, ge=0)
    offload: bool = False
    steps: int = Field(28, ge=1, le=1000)
    guidance: float = Field(30.0, ge=0)
    diptych_width: int = Field(768, ge=64, le=2048)
    first_block_cache: float = Field(0.0, ge=0, le=1)
    layerwise_fp8: bool = False
    res_model: Literal[tuple(RES_MODELS)] = "grounded_sam"  # type: ignore[valid-type]
    share_text_encoders: bool = True


class Deployment(BaseModel):
    """A `[serve.<family>]` table: how the Ray Serve deployment of a model family is sized."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_replicas: int | Literal["auto"] = 1
    num_gpus: float | None = Field(None, ge=0, description="per replica; default 1 for a GPU family, 0 on device cpu")
    num_cpus: float = Field(0.25, ge=0)
    max_ongoing_requests: int = Field(4, ge=1)
    autoscaling: dict[str, Any] | None = None  # Serve's autoscaling_config, used with num_replicas = "auto"


@dataclass(frozen=True)
class ModelConfig:
    runtime: Runtime = field(default_factory=Runtime)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    serve: dict[str, Deployment] = field(default_factory=dict)
    """Deployment sizes by model family (bricks.deployments), for backend = "ray"."""

    @classmethod
    def from_settings(cls, bricks: BrickSettings) -> ModelConfig:
        """The configuration the bricks' settings name: their models file, models, Builder and device."""
        config = cls.load(bricks.models_file, ids=bricks.model, device=bricks.device)
        return config.with_builder(bricks.builder_model, bricks.builder_subfolder)

    @classmethod
    def load(cls, path: Path | None = None, *, ids: Mapping[str, str] | None = None, **runtime: Any) -> ModelConfig:
        """Defaults <- the TOML file at `path` <- `ids` (key -> hub id or path) <- `runtime` overrides."""
        text = (importlib.resources.files("bricks.gpu") / "models.toml").read_text(encoding="utf-8")
        config = cls._parse(tomllib.loads(text), "bricks/gpu/models.toml", configured=False, base=cls())
        if path is not None:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SchemaError(str(path), f"cannot read the model configuration: {exc}") from None
            config = cls._parse(data, str(path), configured=True, base=config)
        models = dict(config.models)
        for key, value in (ids or {}).items():
            key = key.lower()
            old = models.get(key, ModelEntry(key, value))
            models[key] = replace(old, id=value, configured=True, subfolder=None if old.id != value else old.subfolder)
        rt = config.runtime.model_copy(update={k: v for k, v in runtime.items() if v is not None})
        return cls(rt, models, config.serve)

    @classmethod
    def _parse(cls, data: dict[str, Any], source: str, *, configured: bool, base: ModelConfig) -> ModelConfig:
        table = data.get("runtime", {})
        if not isinstance(table, dict):
            raise SchemaError(source, "[runtime] must be a table")
        try:
            runtime = Runtime.model_validate(base.runtime.model_dump() | table)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SchemaError(source, f"[runtime]: {problems}") from None
        models = dict(base.models)
        for key, entry in data.get("models", {}).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("id", ""), str):
                raise SchemaError(source, f"[models.{key}] needs an 'id' string")
            unknown = set(entry) - {"id", "subfolder", "weight_name"}
            if unknown:
                raise SchemaError(source, f"[models.{key}]: unknown keys {sorted(unknown)}")
            models[key] = ModelEntry(key, entry.get("id", ""), entry.get("subfolder"), entry.get("weight_name"), configured)
        serve = dict(base.serve)
        for family, table in data.get("serve", {}).items():
            try:
                serve[family] = Deployment.model_validate(table)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise SchemaError(source, f"[serve.{family}]: {problems}") from None
        return cls(runtime, models, serve)

    def with_builder(self, model: str | None, subfolder: str | None = None) -> ModelConfig:
        """The `builder` entry replaced by `--builder-model` (and `--builder-subfolder`), if given."""
        if not model:
            return self
        return replace(self, models={**self.models, "builder": ModelEntry("builder", model, subfolder, None, True)})

    def entry(self, key: str) -> ModelEntry:
        if key not in self.models:
            raise KeyError(f"no model '{key}' in the configuration")
        return self.models[key]

    def required(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """A schema's model keys as entries: `res` becomes the chosen text-segmentation models."""
        return tuple(k for key in keys for k in (RES_MODELS.get(self.runtime.res_model, ()) if key == "res" else (key,)))

    def configured(self, keys: list[str] | tuple[str, ...]) -> bool:
        return all(k in self.models and self.models[k].configured and self.models[k].id for k in keys)
