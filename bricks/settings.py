"""The bricks' settings: image limits and store, and which bricks and models load.

Every setting has one name: the field's. It is read from `LEGO_EDIT_<NAME>` (through
pydantic-settings), set by the flag `--<name>` (see `server/settings.py`, which composes these
sections with the Builder's and the server's), and validated by its type.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "LEGO_EDIT_"


def _split(separator: str):
    """A list from one environment string (`a:b`), left alone when it is a list already."""

    def split(value: Any) -> Any:
        return tuple(part.strip() for part in value.split(separator) if part.strip()) if isinstance(value, str) else value

    return split


UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
"""A path; `~` is the user's home."""
Paths = Annotated[tuple[UserPath, ...], NoDecode, BeforeValidator(_split(os.pathsep))]
"""Directories; in the environment separated by the platform's path separator."""
Entries = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split(";"))]
"""Strings; in the environment separated by ';'."""
Size = Annotated[int, Field(ge=0), BeforeValidator(lambda v: v.replace("_", "") if isinstance(v, str) else v)]
"""A count of bytes or pixels; the environment may write 1_000_000."""


class Section(BaseSettings):
    """A group of settings. Each field is read from LEGO_EDIT_<FIELD>; a dict field from
    LEGO_EDIT_<FIELD>_<KEY> variables (e.g. LEGO_EDIT_MODEL_FLUX_FILL)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, env_nested_delimiter="_", env_nested_max_split=1,
        frozen=True, extra="forbid", validate_default=True,
    )


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lego-edit-mcp"


class StoreSettings(Section):
    """What an input may be, and where images are kept."""

    allowed_roots: Paths = Field(default_factory=lambda: (Path.cwd(),), json_schema_extra={"shown": "the working directory"},
                                 description="directories file inputs must resolve under, symlinks followed")
    max_pixels: Size = Field(40_000_000, description="largest image accepted, in pixels (also the decompression-bomb guard)")
    max_bytes: Size = Field(50 * 1024 * 1024, description="largest encoded image accepted (file, data URI or base64), in bytes")
    memory_budget: Size = Field(1024**3, description="bytes of decoded images kept in memory; older ones are spilled to the cache directory")
    disk_budget: Size = Field(4 * 1024**3, description="bytes of spilled images kept in the cache directory; the least recently used go beyond it")
    cache_dir: UserPath = Field(default_factory=lambda: _cache_home() / "images", json_schema_extra={"shown": "~/.cache/lego-edit-mcp/images"}, description=
        "where stored images are spilled and kept across restarts")
    shared_store: str | None = Field(None, description=
        "an fsspec URL where every front keeps and finds the images it gives out (file:///mnt/lego/images, "
        "s3://bucket/images with s3fs); needs the scale extra")
    shared_budget: Size | None = Field(None, description="bytes of images kept in the shared store; the least recently used go beyond it")


class BrickSettings(Section):
    """Which bricks load, which backend runs them, and the models they load."""

    backend: Literal["auto", "cpu", "ray"] = Field("auto", description=
        "'auto' runs each brick on the first backend it lists that can run here; 'cpu' forces the CPU backends; "
        "'ray' hands each brick's compute to its Ray Serve deployment (lego-edit-mcp deploy), which picks the backend where it runs")
    ray_address: str | None = Field(None, description=
        "the Ray cluster of backend 'ray' (e.g. ray://head:10001, or auto); none starts or joins a local one")
    ray_app: str = Field("lego-edit", description="the Serve application of the deployments (several configurations can share a cluster)")
    ray_local_cpu_bricks: bool = Field(False, description=
        "with backend 'ray', run the bricks that need no model in the front itself (no hop for them)")
    schema_dirs: Paths = Field((), description=
        "extra directories of brick schema files (and their modules), loaded after the built-in ones and watched")
    models_dir: UserPath = Field(default_factory=lambda: _cache_home() / "models", json_schema_extra={"shown": "~/.cache/lego-edit-mcp/models"}, description=
        "trained weights of the CPU bricks, put there by `lego-edit-mcp fetch-models`")
    models_file: UserPath | None = Field(None, description=
        "a TOML file overriding the GPU bricks' model configuration (see bricks/gpu/models.toml)")
    model: dict[str, str] = Field(default_factory=dict, description=
        "one model of that configuration, KEY=hub id or local path (e.g. flux_fill=/models/fill)")
    device: str | None = Field(None, description=
        "device of the GPU bricks: auto, cuda, cuda:1, mps or cpu (overrides the model configuration's)")
    builder_model: str | None = Field(None, description=
        "the Builder MLLM, hub id or local path: the model configuration's `builder` entry, which the "
        "transformers planner shares with the placement and caption bricks")
    builder_subfolder: str | None = Field(None, description="subfolder of builder_model holding the weights")


class RegistrySettings(Protocol):
    """What a registry is built from: any settings object with these two sections."""

    @property
    def store(self) -> StoreSettings: ...

    @property
    def bricks(self) -> BrickSettings: ...
