"""The tools `register_tool` and `unregister_tool`: add or remove a composite or remote tool while serving."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Annotated, Any

import mcp.types as types
from pydantic import Field

from bricks import Brick, InvalidInput, SchemaError

from .runtime_tools import ToolDefinition, definition_of
from .results import error_result

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .notify import ToolListNotifier
    from .runtime_tools import RuntimeTools

REGISTER_DESCRIPTION = (
    "Add a tool, at once usable by every client, run_workflow and lego_edit, and kept until unregistered: "
    "a composite (a workflow of these tools) or a remote (a tool of an MCP server the operator allowed)."
)


DEFINITION_SCHEMA_URI = "lego://schemas/tool-definition"


def register(server: MCPServer[Any], runtime: RuntimeTools, notifier: ToolListNotifier) -> None:

    @server.resource(DEFINITION_SCHEMA_URI, name="tool-definition-schema", mime_type="application/json",
                     description="JSON Schema of the definition register_tool takes")
    def tool_definition_schema() -> str:
        return json.dumps(definition_schema(), indent=1)

    @server.tool(name="register_tool", description=REGISTER_DESCRIPTION,
                 annotations=types.ToolAnnotations(destructive_hint=False))
    async def register_tool(
        definition: Annotated[dict[str, Any], Field(description=f"JSON Schema, with an example: the resource {DEFINITION_SCHEMA_URI}.")],
    ) -> types.CallToolResult:
        try:
            brick = await runtime.register(definition_of(definition))
        except (InvalidInput, SchemaError) as exc:
            return error_result(exc)
        await notifier.tools_changed()
        return _described(brick)

    @server.tool(name="unregister_tool", description=(
        "Remove a tool added with register_tool; unregister the composites that use it first."),
        annotations=types.ToolAnnotations(destructive_hint=True, idempotent_hint=True))
    async def unregister_tool(
        name: Annotated[str, Field(description="Its MCP name or workflow id.")],
    ) -> types.CallToolResult:
        try:
            removed = runtime.unregister(name)
        except InvalidInput as exc:
            return error_result(exc)
        await notifier.tools_changed()
        structured = {"removed": removed}
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(structured))], structured_content=structured)


def _described(brick: Brick) -> types.CallToolResult:
    structured = {
        "name": brick.name,
        "builder_id": brick.spec.builder_id,
        "runs": brick.runner.kind if brick.runner else "code",
        "input_schema": brick.input_schema,
        "output_schema": brick.output_schema,
    }
    return types.CallToolResult(content=[types.TextContent(text=json.dumps(structured))], structured_content=structured)


@functools.cache
def definition_schema() -> dict[str, Any]:
    """The JSON Schema of a register_tool definition (a resource, so tools/list stays short)."""
    return ToolDefinition.model_json_schema()
