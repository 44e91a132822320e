"""A brick's outputs -> an MCP tool result: resource links, capped thumbnails, structured content."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent

from bricks import Registry, StoredImage
from bricks.images import thumbnail


def tool_result(registry: Registry, brick: str, outputs: dict[str, Any]) -> CallToolResult:
    """One `ResourceLink` and one thumbnail per image output, plus the structured outputs as JSON text.

    The JSON text repeats the structured content for clients of protocol versions before
    structured output. Images travel by reference: the full picture is a resource read away.
    """
    settings = registry.settings
    content: list[ContentBlock] = []
    structured: dict[str, Any] = {}
    for name, value in outputs.items():
        if not isinstance(value, StoredImage):
            structured[name] = value
            continue
        entry: dict[str, Any] = {"uri": value.uri, "width": value.width, "height": value.height}
        if settings.output_dir is not None:
            entry["path"] = str(registry.store.save(value.id, settings.output_dir))
        structured[name] = entry
        content.append(
            ResourceLink(
                uri=value.uri,
                name=f"{brick}.{name}",
                title=f"{name} of {brick} ({value.width}x{value.height} {'mask' if value.is_mask else 'image'})",
                mime_type="image/png",
            )
        )
        if settings.thumbnail_side > 0:
            data, mime = thumbnail(
                registry.store.get(value.id), max_side=settings.thumbnail_side, max_bytes=settings.thumbnail_bytes
            )
            content.append(ImageContent(data=base64.b64encode(data).decode(), mime_type=mime))
    content.append(TextContent(text=json.dumps(structured)))
    return CallToolResult(content=content, structured_content=structured)


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)
