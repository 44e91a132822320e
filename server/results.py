"""Results -> MCP content: resource links, capped thumbnails, structured content."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp.types import (
    CallToolResult,
    ContentBlock,
    ImageContent,
    ResourceLink,
    TextContent,
)

from bricks import LegoEditError, Registry, StoredImage
from bricks.images import thumbnail

from .settings import ResultSettings


def image_content(
    registry: Registry, settings: ResultSettings, label: str, image: StoredImage
) -> tuple[dict[str, Any], list[ContentBlock]]:
    """The structured entry `{uri, width, height, path?}` and the blocks (link, thumbnail) of one image."""
    entry: dict[str, Any] = {"uri": image.uri, "width": image.width, "height": image.height}
    if settings.output_dir is not None:
        entry["path"] = str(registry.store.save(image.id, settings.output_dir))
    kind = "mask" if image.is_mask else "image"
    blocks: list[ContentBlock] = [
        ResourceLink(uri=image.uri, name=label, title=f"{label} ({image.width}x{image.height} {kind})", mime_type="image/png")
    ]
    if settings.thumbnail_side > 0:
        data, mime = thumbnail(registry.store.get(image.id), max_side=settings.thumbnail_side, max_bytes=settings.thumbnail_bytes)
        blocks.append(ImageContent(data=base64.b64encode(data).decode(), mime_type=mime))
    return entry, blocks


def tool_result(registry: Registry, settings: ResultSettings, brick: str, outputs: dict[str, Any]) -> CallToolResult:
    """A brick's outputs: per image a link and a thumbnail, plus the structured outputs as JSON text.

    The JSON text repeats the structured content for clients of protocol versions before
    structured output. Images travel by reference: the full picture is a resource read away.
    """
    content: list[ContentBlock] = []
    structured: dict[str, Any] = {}
    for name, value in outputs.items():
        if isinstance(value, StoredImage):
            structured[name], blocks = image_content(registry, settings, f"{brick}.{name}", value)
            content += blocks
        else:
            structured[name] = value
    content.append(TextContent(text=json.dumps(structured)))
    return CallToolResult(content=content, structured_content=structured)


def error_result(exc: LegoEditError) -> CallToolResult:
    """An error as the tool result a model reads: the message, then the error's details as JSON."""
    details = exc.details()
    text = str(exc) if not details else f"{exc}\n{json.dumps(details, indent=1)}"
    return CallToolResult(content=[TextContent(text=text)], is_error=True)
