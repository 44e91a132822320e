"""Remote tools: a tool of another MCP server, used as a brick of this one.

Only servers the operator names in the settings can be reached (`--remote-servers NAME=TARGET`,
TARGET an `http(s)://` URL of a streamable-HTTP server or a command line that starts a stdio
server); a registration can only pick one of those by NAME. An HTTP server's bearer token is
the `remote_token` setting of NAME (`LEGO_EDIT_REMOTE_TOKEN_<NAME>`).

Images go to the remote as PNG data URIs. They come back from its structured content (a
`{"uri": ...}` object, as lego-edit-mcp returns, or a data URI), else from its resource links
or inline images in order.

While the server runs, `RemotePool` keeps one connection per remote server open (a stdio
server is started once, not per call) and reconnects once when a call finds it closed.
Without a running pool (the CLI's `call`), each call opens its own connection.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shlex
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import (
    CONNECTION_CLOSED,
    INVALID_REQUEST,
    BlobResourceContents,
    CallToolResult,
    ImageContent,
    ResourceLink,
    TextContent,
)

from bricks import BrickFailed, InvalidInput, Registry
from bricks.context import ProgressCallback
from bricks.images import as_image, as_mask, decode, encode_png
from bricks.spec import IMAGE_TYPES, BrickSpec

if TYPE_CHECKING:
    from pydantic import SecretStr

    from .settings import RemoteSettings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 600
CONNECT_SECONDS = 60
MAX_EVENT_BYTES = 256 * 1024 * 1024  # a bound on one streamed message: images are a few MB each


@dataclass(frozen=True)
class RemoteServer:
    name: str
    target: str
    token: SecretStr | None = field(default=None, repr=False)
    """The bearer token sent to an HTTP server (the `remote_token` setting)."""

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Client]:
        if self.target.startswith(("http://", "https://")):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"} if self.token else {}
            async with httpx2.AsyncClient(headers=headers, timeout=TIMEOUT_SECONDS) as http:
                transport = streamable_http_client(self.target, http_client=http, max_sse_event_size=MAX_EVENT_BYTES)
                async with Client(transport, read_timeout_seconds=TIMEOUT_SECONDS) as client:
                    yield client
        else:
            argv = shlex.split(self.target)
            params = StdioServerParameters(command=argv[0], args=argv[1:])
            async with Client(params, read_timeout_seconds=TIMEOUT_SECONDS) as client:
                yield client


class RemotePool:
    """Long-lived connections, owned by the task running `serve()` (the server's lifespan)."""

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None
        self._clients: dict[str, tuple[Client, anyio.Event]] = {}
        self._locks: dict[str, anyio.Lock] = {}  # per server: one slow remote holds up no other

    async def serve(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._clients.clear()

    async def call(self, server: RemoteServer, work: Any) -> Any:
        """`await work(client)` on the held connection; a connection found closed is reopened once.

        Without `serve()` running, `work` gets a connection of its own."""
        if self._tg is None:
            async with server.connect() as client:
                return await work(client)
        client = await self._held(server)
        try:
            return await work(client)
        except MCPError as exc:
            if not _lost(exc):
                raise
        self._drop(server, client)
        return await work(await self._held(server))

    def _drop(self, server: RemoteServer, client: Client) -> None:
        held = self._clients.get(server.name)
        if held is not None and held[0] is client:  # not a newer connection another call opened
            del self._clients[server.name]
            held[1].set()  # its holder task closes it

    async def _held(self, server: RemoteServer) -> Client:
        async with self._locks.setdefault(server.name, anyio.Lock()):
            if server.name not in self._clients:
                assert self._tg is not None
                with anyio.fail_after(CONNECT_SECONDS):
                    await self._tg.start(self._hold, server)
            return self._clients[server.name][0]

    async def _hold(self, server: RemoteServer, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        done = anyio.Event()
        started = False
        try:
            async with server.connect() as client:
                self._clients[server.name] = (client, done)
                task_status.started()
                started = True
                await done.wait()
        except Exception as exc:  # a failure to connect goes to the caller; a lost connection is logged
            if not started:
                raise
            log.warning("connection to remote server '%s' ended: %s", server.name, exc)
        finally:
            if self._clients.get(server.name, (None, None))[1] is done:
                del self._clients[server.name]


def _lost(exc: MCPError) -> bool:
    """The connection is gone: the stdio process ended, or an HTTP server restarted and forgot
    our session (the SDK reports that as an invalid request saying so)."""
    return exc.code == CONNECTION_CLOSED or (exc.code == INVALID_REQUEST and "session terminated" in str(exc).lower())


def allowed_servers(settings: RemoteSettings) -> dict[str, RemoteServer]:
    """The servers the settings name (entries already checked to read NAME=TARGET), with their tokens."""
    servers = {}
    for entry in settings.remote_servers:
        name, _, target = (part.strip() for part in entry.partition("="))
        servers[name] = RemoteServer(name, target, settings.remote_token.get(name.lower()))
    return servers


async def check_remote_tool(pool: RemotePool, server: RemoteServer, tool: str, spec: BrickSpec) -> None:
    """The remote tool exists and takes the declared inputs; `InvalidInput` says what differs."""
    try:
        listed = await pool.call(server, lambda client: client.list_tools())
    except Exception as exc:  # any failure to reach it is the registration's problem to report
        raise InvalidInput(f"cannot reach remote server '{server.name}': {type(exc).__name__}: {exc}", param="remote") from None
    remote = next((t for t in listed.tools if t.name == tool), None)
    if remote is None:
        names = ", ".join(sorted(t.name for t in listed.tools))
        raise InvalidInput(f"remote server '{server.name}' has no tool '{tool}' (it has: {names})", param="remote")
    properties = set((remote.input_schema or {}).get("properties", {}))
    required = set((remote.input_schema or {}).get("required", []))
    declared = {p.name for p in spec.inputs}
    if unknown := sorted(declared - properties):
        raise InvalidInput(f"remote tool '{tool}' takes no input {', '.join(unknown)}", param="inputs")
    if missing := sorted(required - declared):
        raise InvalidInput(f"remote tool '{tool}' requires {', '.join(missing)}; declare them as inputs", param="inputs")


@dataclass(frozen=True)
class RemoteRunner:
    pool: RemotePool
    server: RemoteServer
    tool: str
    spec: BrickSpec
    kind: str = "remote"
    uses: frozenset[str] = frozenset()

    def unavailable_reason(self, registry: Registry) -> str | None:
        return None  # reachability is only known by calling

    async def __call__(
        self, registry: Registry, args: dict[str, Any], on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        wire = await anyio.to_thread.run_sync(self._wire_arguments, registry, args)

        async def work(client: Client) -> dict[str, Any]:
            result = await client.call_tool(self.tool, wire, progress_callback=on_progress)
            if result.is_error:
                text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
                raise BrickFailed(self.spec.name, f"remote tool '{self.server.name}/{self.tool}': {text or 'failed'}")
            return await self._outputs(client, result, registry.settings.store.max_pixels)

        return await self.pool.call(self.server, work)

    def _wire_arguments(self, registry: Registry, args: Mapping[str, Any]) -> dict[str, Any]:
        wire = {}
        for p in self.spec.inputs:
            if p.name not in args:
                continue
            value = args[p.name]
            if p.type in IMAGE_TYPES:
                array = registry.resolve(value, p.type, param=p.name)
                value = "data:image/png;base64," + base64.b64encode(encode_png(array)).decode()
            wire[p.name] = value
        return wire

    async def _outputs(self, client: Client, result: CallToolResult, max_pixels: int) -> dict[str, Any]:
        structured = result.structured_content or {}
        unclaimed = [c for c in result.content if isinstance(c, ResourceLink)] or [
            c for c in result.content if isinstance(c, ImageContent)
        ]
        outputs: dict[str, Any] = {}
        for out in self.spec.outputs:
            value = structured.get(out.name)
            if out.type not in IMAGE_TYPES:
                outputs[out.name] = value
                continue
            if isinstance(value, Mapping) and isinstance(value.get("uri"), str):
                data = await _read(client, value["uri"])
            elif isinstance(value, str) and value.startswith("data:"):
                data = base64.b64decode(value.partition(",")[2])
            elif unclaimed:
                block = unclaimed.pop(0)
                data = await _read(client, str(block.uri)) if isinstance(block, ResourceLink) else base64.b64decode(block.data)
            else:
                outputs[out.name] = None  # the registry reports a missing required output
                continue
            array = await anyio.to_thread.run_sync(lambda d=data: decode(d, max_pixels=max_pixels))
            outputs[out.name] = as_mask(array) if out.type == "Mask" else as_image(array)
        return outputs


async def _read(client: Client, uri: str) -> bytes:
    contents = (await client.read_resource(uri)).contents
    blob = next((c for c in contents if isinstance(c, BlobResourceContents)), None)
    if blob is None:
        raise BrickFailed("remote", f"resource {uri} holds no image")
    return base64.b64decode(blob.blob)
