"""The baseline for bench/overhead.py: plain MCP SDK tools doing the same work as two bricks.

Each tool takes a `lego://images/` URI, runs the same brick function on the stored pixels,
stores the output and returns the same content (link, thumbnail, JSON) -- but with no schema,
no registry and no argument validation. Run as a stdio server: `python bench/bare_server.py CACHE_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from bricks import Registry
from bricks.cpu.masks import bbox
from bricks.cpu.tone import adjust
from server.results import tool_result
from server.settings import Settings


def bare_server(registry: Registry, settings: Settings) -> MCPServer[Any]:
    mcp: MCPServer[Any] = MCPServer("bare")
    store = registry.store

    def load(uri: str):
        return store.get(store.parse_uri(uri))

    @mcp.tool()
    def bare_bbox(mask: str) -> Annotated[CallToolResult, dict[str, Any]]:
        return tool_result(registry, settings.results, "bare_bbox", {"mask": store.put(bbox(load(mask))["mask"])})

    @mcp.tool()
    def bare_adjust(image: str, saturation: float = 0.0) -> Annotated[CallToolResult, dict[str, Any]]:
        args = {p.name: p.default for p in registry.get("adjust").spec.inputs}
        args.update(image=load(image), saturation=saturation)
        return tool_result(registry, settings.results, "bare_adjust", {"image": store.put(adjust(**args)["image"])})

    return mcp


if __name__ == "__main__":
    cache = Path(sys.argv[1])
    settings = Settings.load(cache_dir=cache)
    registry = Registry.from_settings(settings)
    bare_server(registry, settings).run("stdio")
