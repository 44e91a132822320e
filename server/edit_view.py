"""The edit view: an MCP App (SEP-1865) that shows an edit and lets a person refine it.

`ui://lego-edit/editor.html` (`server/view/editor.html`, self-contained) renders the results of
`lego_edit`, `run_workflow` and every brick that returns an image: before/after with a slider,
the workflow's steps with thumbnails and times, the planner's reasoning and the judge's scores;
a person paints a mask on the source and re-runs the edit inside it, or edits the instruction.
It talks to the host only over the Apps postMessage protocol, so it needs no network and no token.

Only clients that negotiate Apps (`io.modelcontextprotocol/ui` with the app MIME type) see any of
it: the capability, the `ui://` resource, the tools' `_meta.ui` and the view data of results
(`_meta["lego-edit/view"]`). Every other client gets exactly the answers it got before.
"""

from __future__ import annotations

import base64
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps, client_supports_apps
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from bricks import InvalidInput, StoredImage
from bricks.images import thumbnail
from bricks.types import IMAGE_TYPES

from .tasks import LONG_TOOLS, has_request

if TYPE_CHECKING:
    from bricks import Registry
    from builder.executor import Execution

VIEW_URI = "ui://lego-edit/editor.html"
VIEW_KEY = "lego-edit/view"  # a result's `_meta` entry the view reads
STEP_THUMBNAIL_SIDE = 96
STEP_THUMBNAIL_BYTES = 8_000


def edit_view() -> Apps:
    """The Apps extension with the view's resource (the tools are the server's own: see `middleware`)."""
    apps = Apps()
    apps.add_html_resource(
        VIEW_URI,
        files("server").joinpath("view/editor.html").read_text(encoding="utf-8"),
        name="editor",
        title="Lego-Edit edit view",
        description="Before/after, the workflow's steps, mask painting and re-runs of an edit",
        prefers_border=True,
    )
    return apps


def wants_view(ctx: Any) -> bool:
    """Whether a result should carry view data: the caller negotiated Apps, or it is a task's work
    (whoever polls may have; `middleware` takes the data out for those who did not)."""
    return not has_request(ctx) or client_supports_apps(ctx)


def view_data(registry: Registry, execution: Execution) -> dict[str, Any]:
    """What the view shows beyond the structured result: the stored source and mask (a reference the
    view can read and re-run with, whatever the caller passed), and each step's thumbnail."""

    def entry(uri: str | None) -> dict[str, Any] | None:
        if uri is None:
            return None
        info = registry.store.info(registry.store.parse_uri(uri))
        return {"uri": uri, "width": info.width, "height": info.height}

    steps = []
    for run in sorted(execution.steps, key=lambda r: r.step):
        image = next((v for v in run.outputs.values() if isinstance(v, StoredImage)), None)
        steps.append({
            "step": run.step,
            "brick": run.brick,
            "seconds": round(run.seconds, 4),
            "thumbnail": _data_uri(registry, image.id) if image is not None else None,
        })
    return {"source": entry(execution.inits.get("image")), "mask": entry(execution.inits.get("mask")), "steps": steps}


def _data_uri(registry: Registry, image_id: str) -> str | None:
    """A step output's thumbnail; none if the store has already dropped it (over its disk budget)."""
    try:
        pixels = registry.store.get(image_id)
    except InvalidInput:
        return None
    data, mime = thumbnail(pixels, max_side=STEP_THUMBNAIL_SIDE, max_bytes=STEP_THUMBNAIL_BYTES)
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def shows_images(registry: Registry, name: str) -> bool:
    """Tools whose results the view renders: the planning and workflow tools, and bricks with an image output."""
    if name in LONG_TOOLS:
        return True
    return name in registry and any(o.type in IMAGE_TYPES for o in registry.get(name).spec.outputs)


class ViewGate:
    """A server middleware that shows the view to Apps clients only."""

    def __init__(self, registry: Registry):
        self.registry = registry

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        method = ctx.method
        if method == "initialize":
            apps = _declares_apps((ctx.params or {}).get("capabilities"))
        else:
            apps = client_supports_apps(ctx)
        if method == "resources/read" and not apps and str((ctx.params or {}).get("uri", "")).startswith("ui://"):
            uri = ctx.params["uri"]
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource: {uri}", data={"uri": uri})
        result = await call_next(ctx)
        if not isinstance(result, dict):
            return result
        if method in ("initialize", "server/discover"):
            _advertise(result, apps)
        elif method == "tools/list" and apps:
            for tool in result.get("tools", []):
                if shows_images(self.registry, tool.get("name", "")):
                    meta = tool.setdefault("_meta", {})
                    meta["ui"] = {"resourceUri": VIEW_URI}
                    meta["ui/resourceUri"] = VIEW_URI  # the flat key older hosts read
        elif method == "resources/list" and not apps:
            result["resources"] = [r for r in result.get("resources", []) if not r.get("uri", "").startswith("ui://")]
        elif method in ("tools/call", "tasks/get", "tasks/result") and not apps:
            _drop_view(result.get("result") if method == "tasks/get" else result)
        return result


def _declares_apps(capabilities: Any) -> bool:
    settings = ((capabilities or {}).get("extensions") or {}).get(EXTENSION_ID)
    return isinstance(settings, dict) and APP_MIME_TYPE in (settings.get("mimeTypes") or ())


def _advertise(result: dict[str, Any], apps: bool) -> None:
    """The Apps capability for Apps clients only. The handshake revisions' result schema has no
    `extensions` (the SDK drops them there), but Apps hosts read it in `initialize`: put it back."""
    capabilities = result.setdefault("capabilities", {})
    extensions = capabilities.setdefault("extensions", {})
    if apps:
        extensions.setdefault(EXTENSION_ID, {})
    else:
        extensions.pop(EXTENSION_ID, None)
    if not extensions:
        del capabilities["extensions"]


def _drop_view(result: Any) -> None:
    meta = result.get("_meta") if isinstance(result, dict) else None
    if isinstance(meta, dict) and VIEW_KEY in meta:
        del meta[VIEW_KEY]
        if not meta:
            del result["_meta"]
