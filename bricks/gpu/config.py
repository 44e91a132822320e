"""The model configuration of the GPU bricks: packaged defaults, a user TOML file, then env.

Every component has a key (`flux_fill`, `lora_rcm`, `sam`, ...). An entry is *configured* when
the user's file or the environment names it; the packaged defaults alone do not count. That
is what lets CPU-only runs use GPU bricks on purpose (tiny test models) and never by accident.
"""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SchemaError

ENV_PREFIX = "LEGO_EDIT_MODEL_"
RES_MODELS = {"grounded_sam": ("grounding", "sam"), "clipseg": ("clipseg",)}
"""What the schema's model key `res` stands for, by `runtime.res_model`."""


@dataclass(frozen=True)
class ModelEntry:
    key: str
    id: str
    subfolder: str | None = None
    weight_name: str | None = None
    configured: bool = False


@dataclass(frozen=True)
class Runtime:
    device: str = "auto"
    dtype: str = "auto"
    memory_budget_gb: float = 0.0
    offload: bool = False
    steps: int = 28
    guidance: float = 30.0
    first_block_cache: float = 0.0
    layerwise_fp8: bool = False
    res_model: str = "grounded_sam"
    share_text_encoders: bool = True


@dataclass(frozen=True)
class ModelConfig:
    runtime: Runtime = field(default_factory=Runtime)
    models: dict[str, ModelEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None, env: dict[str, str] | None = None, **runtime: Any) -> ModelConfig:
        """Defaults <- the TOML file at `path` <- `LEGO_EDIT_MODEL_<KEY>` variables <- `runtime` overrides."""
        env = os.environ if env is None else env
        text = (importlib.resources.files("bricks.gpu") / "models.toml").read_text(encoding="utf-8")
        config = cls._parse(tomllib.loads(text), "bricks/gpu/models.toml", configured=False, base=cls())
        if path is not None:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SchemaError(str(path), f"cannot read the model configuration: {exc}") from None
            config = cls._parse(data, str(path), configured=True, base=config)
        models = dict(config.models)
        for name, value in env.items():
            if name.startswith(ENV_PREFIX) and value:
                key = name[len(ENV_PREFIX):].lower()
                old = models.get(key, ModelEntry(key, value))
                models[key] = replace(old, id=value, configured=True, subfolder=None if old.id != value else old.subfolder)
        rt = replace(config.runtime, **{k: v for k, v in runtime.items() if v is not None})
        return cls(rt, models)

    @classmethod
    def _parse(cls, data: dict[str, Any], source: str, *, configured: bool, base: ModelConfig) -> ModelConfig:
        try:
            runtime = replace(base.runtime, **data.get("runtime", {}))
        except TypeError as exc:
            raise SchemaError(source, f"[runtime]: {exc}") from None
        models = dict(base.models)
        for key, entry in data.get("models", {}).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("id", ""), str):
                raise SchemaError(source, f"[models.{key}] needs an 'id' string")
            unknown = set(entry) - {"id", "subfolder", "weight_name"}
            if unknown:
                raise SchemaError(source, f"[models.{key}]: unknown keys {sorted(unknown)}")
            models[key] = ModelEntry(key, entry.get("id", ""), entry.get("subfolder"), entry.get("weight_name"), configured)
        return cls(runtime, models)

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
