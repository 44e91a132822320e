"""Tools registered while the server runs (`register_tool`), kept in a state directory.

Only tools that run no new code can be registered this way: a composite (a workflow of
registered bricks) or a remote tool (a tool of an MCP server the operator allowed). Each
registration is saved as `<state_dir>/tools/<name>.json` and registered again at start-up.

`unregister` refuses to remove a tool that a composite uses: unregister the composite first.
Bricks from schema files and plugins are removed by removing their file or package, never here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bricks import Brick, InvalidInput, LegoEditError, Registry, SchemaError
from bricks.brick import Runner
from bricks.spec import Annotations, BrickSpec, Output, Param, parse_spec
from builder.composite import composite

from .remote import (
    RemotePool,
    RemoteRunner,
    RemoteServer,
    allowed_servers,
    check_remote_tool,
)
from .settings import RemoteSettings

log = logging.getLogger(__name__)

MAX_TOOLS = 256
"""Tools register_tool keeps at most: a client cannot grow the catalogue (and the prompt) without end."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompositePart(_Strict):
    pipeline: list[dict[str, Any]] = Field(
        description="Steps in the workflow format ({step, model, input, output}); the tool's inputs are init[<name>]."
    )
    outputs: dict[str, str] = Field(description="Each output of the tool and the step output it is, e.g. {\"image\": \"step2[image]\"}.")


class RemotePart(_Strict):
    server: str = Field(description="Name of a remote MCP server the operator allowed (--remote-server NAME=TARGET).")
    tool: str = Field(description="The tool's name on that server.")


_EXAMPLE = {
    "name": "soft_cutout", "builder_id": "SOFT-CUTOUT", "description": "The main subject, cut out with a refined edge.",
    "inputs": [{"name": "image", "type": "Image", "description": "The photo."}],
    "composite": {
        "pipeline": [
            {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]"}},
            {"step": 2, "model": "MASK-SEG", "input": {"image": "init[image]", "mask": "step1[mask]"}, "output": {"image": "step2[image]"}},
        ],
        "outputs": {"image": "step2[image]"},
    },
}


class ToolDefinition(_Strict):
    """A tool to register: the fields of a brick schema, plus how it runs (composite or remote)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(description="MCP tool name, snake_case")
    builder_id: str = Field(description="Id in workflows and the Builder prompt, e.g. SOFT-CUTOUT")
    kind: Literal["predict", "edit"] = "edit"
    title: str | None = None
    description: str
    constraint: str | None = Field(None, description="When the Builder should (not) use it")
    inputs: list[Param] = Field(description="Typed inputs; a composite's steps read them as init[<name>]")
    input_sets: list[list[str]] | None = Field(
        None, description="Ways to call it: its optional inputs must be given as exactly one of these sets"
    )
    outputs: list[Output] | None = Field(None, description="Remote tools only; a composite's come from its steps")
    annotations: Annotations | None = None
    composite: CompositePart | None = None
    remote: RemotePart | None = None


class RuntimeTools:
    def __init__(self, registry: Registry, state_dir: Path, remotes: RemoteSettings):
        self.registry = registry
        self.directory = Path(state_dir) / "tools"
        self.remotes: dict[str, RemoteServer] = allowed_servers(remotes)
        self.pool = RemotePool()
        """Connections to the remote servers; the server's lifespan runs `pool.serve()`."""
        self.names: list[str] = []

    def restore(self) -> dict[str, str]:
        """Register the saved tools again; returns the files that failed, with why (also logged)."""
        return self._restore(sorted(self.directory.glob("*.json")) if self.directory.is_dir() else [])

    def sync(self) -> bool:
        """Take in what other fronts sharing the state directory registered or unregistered since;
        whether anything changed."""
        saved = {p.stem: p for p in self.directory.glob("*.json")} if self.directory.is_dir() else {}
        gone = [n for n in self.names if n not in saved and not self.registry.dependents(n)]
        for name in gone:
            self.registry.remove(name)
            self.names.remove(name)
        before = len(self.names)
        self._restore(sorted(p for n, p in saved.items() if n not in self.names), quiet=True)
        return bool(gone) or len(self.names) > before

    def _restore(self, paths: list[Path], *, quiet: bool = False) -> dict[str, str]:
        pending = paths
        problems: dict[str, str] = {}
        while pending:  # composites may use each other: retry until a round adds nothing
            failed = []
            for path in pending:
                try:
                    definition = ToolDefinition.model_validate_json(path.read_text(encoding="utf-8"))
                    self._add(definition, self._build(definition))
                except (LegoEditError, ValueError, OSError) as exc:  # ValueError: bad JSON, bad UTF-8
                    failed.append(path)
                    problems[str(path)] = str(exc)
            if len(failed) == len(pending):
                break
            pending = failed
        for path in pending:
            (log.debug if quiet else log.warning)("saved tool %s not registered: %s", path, problems[str(path)])
        return {str(p): problems[str(p)] for p in pending}

    async def register(self, definition: ToolDefinition) -> Brick:
        """Check, save, then add: a tool is live only once it is saved."""
        if len(self.names) >= MAX_TOOLS:
            raise InvalidInput(f"{MAX_TOOLS} tools are registered already; unregister some first", param="definition")
        spec, runner = self._build(definition)
        if isinstance(runner, RemoteRunner):
            await check_remote_tool(self.pool, runner.server, runner.tool, spec)
        path = self._save(definition)
        try:
            return self._add(definition, (spec, runner))
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def unregister(self, name: str) -> str:
        try:
            brick = self.registry.get(name)
        except InvalidInput as exc:
            raise exc.located(param="name") from None
        if brick.name not in self.names:
            raise InvalidInput(
                f"'{brick.name}' comes from {brick.source}; only tools added with register_tool can be unregistered",
                param="name",
            )
        if users := self.registry.dependents(brick.name):
            raise InvalidInput(f"'{brick.name}' is used by composite {', '.join(users)}; unregister that first", param="name")
        (self.directory / f"{brick.name}.json").unlink(missing_ok=True)  # first: a failure leaves it whole
        self.registry.remove(brick.name)
        self.names.remove(brick.name)
        return brick.name

    def _build(self, definition: ToolDefinition) -> tuple[BrickSpec, Runner]:
        """The spec and runner of a definition, checked against the registry; nothing is added."""
        if (definition.composite is None) == (definition.remote is None):
            raise InvalidInput("give exactly one of `composite` or `remote`", param="definition")
        if definition.remote is not None:
            if not definition.outputs:
                raise InvalidInput("a remote tool declares its outputs", param="outputs")
            server = self._server(definition.remote.server)
            spec = self._spec({**self._common(definition), "inputs": definition.inputs, "outputs": definition.outputs})
            return spec, RemoteRunner(self.pool, server, definition.remote.tool, spec)
        if definition.outputs is not None:
            raise InvalidInput("a composite's outputs come from its steps: give them in composite.outputs", param="outputs")
        probe = [{"name": "x", "type": "Image", "description": "x"}]
        names = {k: v for k, v in self._common(definition).items() if k != "input_sets"}
        self._spec({**names, "inputs": [], "outputs": probe})  # names first: cheaper to read
        assert definition.composite is not None
        return composite(
            self.registry,
            inputs=definition.inputs,
            pipeline=definition.composite.pipeline,
            outputs=definition.composite.outputs,
            **self._common(definition),
        )

    @staticmethod
    def _common(definition: ToolDefinition) -> dict[str, Any]:
        return definition.model_dump(
            include={"name", "builder_id", "description", "kind", "title", "constraint", "annotations", "input_sets"},
            exclude_none=True,
        )

    def _spec(self, data: dict[str, Any]) -> BrickSpec:
        """A valid spec whose name and builder id are free, or `InvalidInput` naming the field."""
        try:
            spec = parse_spec({**data, "same_size": False}, "definition")
        except SchemaError as exc:
            raise InvalidInput(exc.reason, param="definition") from None
        for field_name in ("name", "builder_id"):
            key = getattr(spec, field_name)
            if holder := self.registry.taken_by(key):
                raise InvalidInput(f"'{key}' is already taken by {holder}", param=field_name)
        return spec

    def _add(self, definition: ToolDefinition, built: tuple[BrickSpec, Runner]) -> Brick:
        spec, runner = built
        brick = self.registry.add(spec, source=f"register_tool ({self.directory / spec.name}.json)", runner=runner)
        self.names.append(brick.name)
        return brick

    def _server(self, name: str) -> RemoteServer:
        if name not in self.remotes:
            allowed = ", ".join(sorted(self.remotes)) or "none"
            raise InvalidInput(
                f"remote server '{name}' is not allowed here (allowed: {allowed}); the operator adds one with "
                "--remote-server NAME=TARGET",
                param="remote.server",
            )
        return self.remotes[name]

    def _save(self, definition: ToolDefinition) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{definition.name}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(definition.model_dump(mode="json", exclude_none=True), indent=1), encoding="utf-8")
        os.replace(partial, path)  # atomic: a crash leaves the old file or the new one
        return path


def definition_of(data: Mapping[str, Any]) -> ToolDefinition:
    """Parse a definition; pydantic's errors become one `InvalidInput` naming the field."""
    try:
        return ToolDefinition.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "definition"
        raise InvalidInput(err["msg"], param=where) from None
