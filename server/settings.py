"""The one settings object: the bricks', the Builder's and the server's sections, composed.

A setting has one name, its field's: `max_pixels` is `--max-pixels` on the command line and
`LEGO_EDIT_MAX_PIXELS` in the environment (a dict setting such as `model` takes
`--model KEY=VALUE` and `LEGO_EDIT_MODEL_<KEY>`). Flags beat the environment, which beats the
defaults; the GPU bricks' model configuration adds the TOML models file (`models_file`) below
both. The flags, `settings` and the README's table are all made from these fields.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from bricks.settings import (
    ENV_PREFIX,
    BrickSettings,
    Entries,
    Section,
    Size,
    StoreSettings,
    UserPath,
)
from builder.settings import PlanningSettings


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "lego-edit-mcp"


class ToolSettings(Section):
    """Tools added while serving."""

    watch_interval: float = Field(1.0, ge=0, description="seconds between checks of the schema directories and plugins while serving; 0 turns watching off")
    state_dir: UserPath = Field(default_factory=_state_home, json_schema_extra={"shown": "~/.local/state/lego-edit-mcp"}, description="where tools added with register_tool are kept, to be registered again after a restart")


class ResultSettings(Section):
    """What an image result carries."""

    output_dir: UserPath | None = Field(None, description="also save every image result here at full resolution")
    thumbnail_side: int = Field(512, ge=0, description="long side of the inline thumbnail of each image result; 0 turns thumbnails off")
    thumbnail_bytes: Size = Field(100_000, description="largest encoded thumbnail, in bytes (it is shrunk until it fits)")


class TaskSettings(Section):
    """Tool calls that run as MCP tasks (long edits that outlive a host's timeout)."""

    task_ttl: float = Field(3600.0, gt=0, description="seconds a task and its result are kept after it starts")
    max_tasks: int = Field(100, ge=1, description="tasks kept at most (finished ones are dropped oldest first; beyond it, new calls run without a task)")
    task_poll_interval: float = Field(1.0, gt=0, description="seconds between polls that clients are asked to keep")
    task_store: str | None = Field(None, description=
        "an fsspec URL where every front keeps tasks (file:///mnt/lego/tasks), so any front answers tasks/*; "
        "none keeps them in this process. Needs the scale extra")


class HttpSettings(Section):
    """How `serve` listens."""

    transport: Literal["stdio", "http"] = Field("stdio", description="stdio for hosts that start the server (Claude Desktop), http for remote clients")
    host: str = Field("127.0.0.1", description="address the HTTP server listens on")
    port: int = Field(8000, ge=1, le=65535, description="port of the HTTP server")
    token: SecretStr | None = Field(None, description="bearer token HTTP clients must send; several, space-separated, give each holder its own tasks")
    no_auth: bool = Field(False, description="serve HTTP without a token (loopback addresses only)")
    allowed_hosts: Entries = Field((), description="extra Host headers to accept, HOST[:PORT]")
    allowed_origins: Entries = Field((), description="extra Origin headers to accept")
    max_request_bytes: Size = Field(64 * 1024 * 1024, description="largest HTTP request body, in bytes")


class RemoteSettings(Section):
    """Other MCP servers whose tools register_tool may proxy."""

    remote_servers: Entries = Field((), description="an MCP server register_tool may proxy, NAME=URL or NAME=COMMAND")
    remote_token: dict[str, SecretStr] = Field(default_factory=dict, description="bearer token sent to the HTTP remote server NAME, NAME=TOKEN")

    @field_validator("remote_servers")
    @classmethod
    def _named(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            name, sep, target = entry.partition("=")
            if not sep or not name.strip().isidentifier() or not target.strip():
                raise ValueError(f"{entry!r}: expected NAME=URL or NAME=COMMAND")
        return entries


SECTIONS: dict[str, type[Section]] = {
    "store": StoreSettings, "bricks": BrickSettings, "planning": PlanningSettings,
    "tools": ToolSettings, "results": ResultSettings, "tasks": TaskSettings, "http": HttpSettings, "remote": RemoteSettings,
}
SECTION_OF: dict[str, str] = {}
"""Setting name -> its section: the names are unique across sections, so one name is enough."""
for _section, _model in SECTIONS.items():
    for _name in _model.model_fields:
        assert _name not in SECTION_OF, f"setting '{_name}' is declared twice"
        SECTION_OF[_name] = _section


class SettingsError(ValueError):
    """A setting with a value its type refuses; the message names the flag and the variable."""


class Settings(BaseModel):
    """Every setting. Built with `Settings.load(**flags)`, or with keywords by setting name
    (`Settings(max_pixels=..., builder="rules")`); a section left out is read from the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    store: StoreSettings = Field(default_factory=StoreSettings)
    bricks: BrickSettings = Field(default_factory=BrickSettings)
    planning: PlanningSettings = Field(default_factory=PlanningSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    results: ResultSettings = Field(default_factory=ResultSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    @model_validator(mode="before")
    @classmethod
    def _by_name(cls, data: Any) -> Any:
        """Keywords named after settings go to their sections (with the rest of each section
        read from the environment); section keywords pass as they are."""
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {k: v for k, v in data.items() if k in SECTIONS}
        for name, value in data.items():
            if name not in SECTIONS:
                section = SECTION_OF.get(name)
                if section is None:
                    raise ValueError(f"unknown setting '{name}'")
                out.setdefault(section, {})[name] = value
        return out

    @classmethod
    def load(cls, **given: Any) -> Settings:
        """The environment's settings with `given` (flags; None means not given) on top."""
        try:
            return cls(**{k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    def __getattr__(self, name: str) -> Any:
        """A setting by its name alone: `settings.max_pixels` is `settings.store.max_pixels`."""
        section = SECTION_OF.get(name)
        if section is None:
            return super().__getattr__(name)  # type: ignore[misc]
        return getattr(getattr(self, section), name)

    def values(self) -> dict[str, Any]:
        """Setting name -> value, every section flattened (secrets stay `SecretStr`)."""
        return {name: getattr(self, name) for name in SECTION_OF}


def field_of(name: str) -> FieldInfo:
    return SECTIONS[SECTION_OF[name]].model_fields[name]


def shape(name: str) -> tuple[type | None, list[str] | None]:
    """How a setting is written: `bool` (a switch), `tuple` (a list), `dict` (KEY=VALUE pairs) or
    None (one value); and the choices of a `Literal`."""
    return _shape(field_of(name).annotation)


def _shape(annotation: Any) -> tuple[type | None, list[str] | None]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _shape(args[0])
    if origin is typing.Literal:
        return None, list(args)
    if origin in (tuple, dict) or annotation is bool:
        return origin or bool, None
    if args and type(None) in args:  # X | None
        return _shape(next(a for a in args if a is not type(None)))
    return None, None


def env_name(name: str) -> str:
    """The variable of a setting; a dict setting takes one variable per key."""
    return f"{ENV_PREFIX}{name.upper()}" + ("_<KEY>" if shape(name)[0] is dict else "")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def markdown_table() -> str:
    """The README's table of settings, one row per field."""
    rows = ["| setting | flag | environment | default |", "|---|---|---|---|"]
    for name in SECTION_OF:
        field, kind = field_of(name), shape(name)[0]
        env = f"`{env_name(name)}`"
        if kind is tuple:
            separator = os.pathsep if "Path" in str(field.annotation) else ";"
            env += f" (`{separator}`-separated)"
        flag = f"`{flag_name(name)}`" + (" (repeatable)" if kind in (tuple, dict) else "")
        rows.append(f"| {field.description} | {flag} | {env} | {default_text(field)} |")
    return "\n".join(rows)


def default_text(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown" in extra:
        return f"`{extra['shown']}`" if "/" in extra["shown"] else extra["shown"]
    value = field.get_default(call_default_factory=True)
    if value in (None, (), {}):
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and value >= 2**20 and value % 2**20 == 0:
        return f"{value // 2**30} GiB" if value % 2**30 == 0 else f"{value // 2**20} MiB"
    if isinstance(value, int | float):
        return f"{value:,}" if value >= 10_000 else f"{value:g}"
    return f"`{value}`"


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = next((str(part) for part in reversed(error["loc"]) if str(part) in SECTION_OF), None)
        where = f"setting {name} ({flag_name(name)}, {env_name(name)})" if name else "settings"
        got = error.get("input")
        secret = name is not None and "SecretStr" in str(field_of(name).annotation)
        shown = "" if secret or got is None or isinstance(got, dict | SecretStr) else f" (got {got!r})"
        problems.append(f"{where}: {error['msg']}{shown}")
    return "; ".join(problems)
