"""The MCP server of lego-edit-mcp: wiring only (tools and resources from the registry, transports, CLI).

Importing this package is cheap: no torch, diffusers or transformers, and no MCP SDK until used.
"""

__version__ = "0.1.0"
