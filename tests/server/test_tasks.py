"""Long tool calls as MCP tasks, with real clients of both protocol generations: a task outlives
the client's timeout and its connection, reports progress, can be cancelled (the GPU worker
stops at its next step), and belongs to its caller; clients that ask for no task get today's
answers."""

import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import httpx2
import numpy as np
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, Request
from mcp_types import Result
from PIL import Image
from pydantic import ConfigDict, TypeAdapter

from server.app import LegoEditServer
from server.runtime import Runtime
from server.task_protocol import EXTENSION
from tests.bricks.gpu.tiny_editors import editors_settings, small_qwen_references, tiny_editors  # noqa: F401 - fixture
from tests.conftest import photo
from tests.server.test_transports import free_port, server_args, wait_for_port

pytestmark = pytest.mark.anyio
CLIENT_TIMEOUT = 3.0  # seconds a host waits for a tool call (often 60 in real hosts)
SLOW_STEPS = 400  # denoising steps that take the tiny Qwen-Image-Edit well past CLIENT_TIMEOUT
ANY = TypeAdapter(dict[str, Any])


class TaskHandle(Result):
    """The 2026-07-28 `resultType: "task"` answer."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"]
    task_id: str
    status: str


async def _polled(handle: TaskHandle, ctx: Any) -> CallToolResult:
    """How a tasks-aware client finishes a task handle for its caller: poll, then the result."""
    while True:
        task = await ctx.session.send_request(Request[Any, Any](method="tasks/get", params={"taskId": handle.task_id}), ANY)
        if task["status"] == "completed":
            return CallToolResult.model_validate(task["result"])
        if task["status"] in ("failed", "cancelled"):
            raise MCPError(code=task.get("error", {}).get("code", -32603), message=task.get("statusMessage", task["status"]))
        await anyio.sleep(task.get("pollIntervalMs", 1000) / 1000)


class TasksClient(ClientExtension):
    """What a tasks-aware 2026-07-28 client declares and understands."""

    identifier = EXTENSION

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=_polled)]


async def ask(client: Client, method: str, **params: Any) -> dict[str, Any]:
    return await client.session.send_request(Request[Any, Any](method=method, params=params), ANY, request_read_timeout_seconds=CLIENT_TIMEOUT)


async def start_modern(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    handle = await client.session.call_tool(tool, arguments, read_timeout_seconds=CLIENT_TIMEOUT, allow_claimed=True)
    assert isinstance(handle, TaskHandle) and handle.status == "working", handle
    return handle.task_id


async def start_legacy(client: Client, tool: str, arguments: dict[str, Any], ttl: int = 60_000) -> str:
    # the SDK's client reads every handshake-era tools/call answer as a CallToolResult; a
    # tasks-aware client reads `{task}`: send it below that check
    params = {"name": tool, "arguments": arguments, "task": {"ttl": ttl}}
    created = await client.session._dispatcher.send_raw_request("tools/call", params, {"timeout": CLIENT_TIMEOUT})
    assert created["task"]["status"] == "working" and created["task"]["ttl"] == ttl, created
    return created["task"]["taskId"]


async def poll(client: Client, task_id: str, until: Any = lambda t: t["status"] in ("completed", "failed", "cancelled"),
               timeout: float = 120) -> list[dict[str, Any]]:  # fmt: skip
    """Every state seen by polling `tasks/get` (each poll well within the client's timeout) until `until`."""
    seen = []
    with anyio.fail_after(timeout):
        while True:
            seen.append(await ask(client, "tasks/get", taskId=task_id))
            if until(seen[-1]):
                return seen
            await anyio.sleep(0.1)


@pytest.fixture
def cat(tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(photo("chelsea")[::8, ::8]).save(path)
    return path


@pytest.fixture
def slow_server(tiny_editors, tmp_path, monkeypatch):  # noqa: F811
    """lego_edit plans "add a hat" with QWEN-EDIT (rules), which runs SLOW_STEPS steps on the tiny model."""
    small_qwen_references(monkeypatch)
    settings = editors_settings(tiny_editors, tmp_path, builder="rules")
    models = settings.bricks.models_file
    models.write_text(models.read_text().replace("steps = 2", f"steps = {SLOW_STEPS}"))
    return LegoEditServer(Runtime.from_settings(settings))


def transformer_calls(server: LegoEditServer) -> list[int]:
    """Counts every forward of the tiny Qwen-Image-Edit transformer (loading it first)."""
    from bricks.gpu.diffusion import pipeline_loader

    pipe = server.runtime.models.load("qwen_image_edit", pipeline_loader("QwenImageEditPlusPipeline", server.runtime.models))
    calls: list[int] = []
    pipe.transformer.register_forward_hook(lambda *_: calls.append(1))
    return calls


async def test_a_call_longer_than_the_clients_timeout_fails_without_a_task(slow_server, cat):
    async with Client(slow_server) as client:
        with pytest.raises(MCPError, match="[Tt]imed out|timeout"):
            await client.call_tool("lego_edit", {"image": str(cat), "instruction": "add a hat"}, read_timeout_seconds=CLIENT_TIMEOUT)


async def test_2026_lego_edit_completes_through_a_task_after_reconnecting(slow_server, cat):
    started = time.monotonic()
    async with Client(slow_server, extensions=[TasksClient()]) as client:
        task_id = await start_modern(client, "lego_edit", {"image": str(cat), "instruction": "add a hat"})
        assert time.monotonic() - started < CLIENT_TIMEOUT
        states = await poll(client, task_id, until=lambda t: "denoising step" in t.get("statusMessage", ""))
    assert states[-1]["status"] == "working" and states[-1]["ttlMs"] == 3_600_000 and states[-1]["pollIntervalMs"] == 1000
    # the client is gone; the work goes on, and a new connection reads the result
    async with Client(slow_server, extensions=[TasksClient()]) as client:
        done = (await poll(client, task_id))[-1]
    assert time.monotonic() - started > CLIENT_TIMEOUT  # it did outlive the client's patience
    assert done["status"] == "completed" and not done["result"].get("isError"), done
    result = done["result"]["structuredContent"]
    assert [s["model"] for s in result["workflow"]["pipeline"] if "model" in s] == ["QWEN-EDIT"]
    image = slow_server.registry.store.get(slow_server.registry.store.parse_uri(result["results"][0]["uri"]))
    assert image.shape == photo("chelsea")[::8, ::8].shape


async def test_handshake_lego_edit_completes_through_an_experimental_task(slow_server, cat, caplog):
    caplog.set_level("DEBUG", logger="client")  # the SDK client's logger
    async with Client(slow_server, mode="legacy") as client:
        raw = await client.session.send_request(Request[Any, Any](method="tools/list", params={}), ANY)
        execution = {t["name"]: t.get("execution") for t in raw["tools"]}
        assert execution["lego_edit"] == {"taskSupport": "optional"} and execution["adjust"] is None
        task_id = await start_legacy(client, "lego_edit", {"image": str(cat), "instruction": "add a hat"})
        listed = await ask(client, "tasks/list")
        assert [t["taskId"] for t in listed["tasks"]] == [task_id]
        first = (await poll(client, task_id, until=lambda t: True))[-1]
        assert first["status"] == "working" and "result" not in first and first["pollInterval"] == 1000
        result = await client.session.send_request(Request[Any, Any](method="tasks/result", params={"taskId": task_id}), ANY)
        assert not result.get("isError") and result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
        assert result["structuredContent"]["workflow"]["pipeline"][0]["model"] == "QWEN-EDIT"
        # the status notification reaches the client, whose SDK (2.3) drops it: its 2025-11-25
        # tables lack the method, so its own log is where the arrival shows
        with anyio.fail_after(5):
            while "dropped 'notifications/tasks/status'" not in caplog.text:
                await anyio.sleep(0.05)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_task_frees_the_worker_at_the_next_step(slow_server, cat, mode):
    calls = transformer_calls(slow_server)
    args = {"image": str(cat), "prompt": "add a hat"}
    extensions = [TasksClient()] if mode == "auto" else []
    async with Client(slow_server, mode=mode, extensions=extensions) as client:
        task_id = await (start_modern if mode == "auto" else start_legacy)(client, "qwen_image_edit", args)
        await poll(client, task_id, until=lambda t: "denoising step" in t.get("statusMessage", ""))
        cancelled = await ask(client, "tasks/cancel", taskId=task_id)
        if mode == "legacy":
            assert cancelled["status"] == "cancelled"
        final = (await poll(client, task_id, timeout=10))[-1]
        assert final["status"] == "cancelled"
        queue = slow_server.runtime.models._queues[str(slow_server.runtime.models.device)]
        assert queue.acquire(timeout=5)  # the device is free again: the step in flight has ended
        queue.release()
        stopped = len(calls)
        await anyio.sleep(0.3)
        assert len(calls) == stopped < SLOW_STEPS  # nothing ran on
        if mode == "legacy":  # the result of a cancelled task is its error
            with pytest.raises(MCPError, match="cancelled"):
                await ask(client, "tasks/result", taskId=task_id)
        assert not (await client.call_tool("qwen_image_edit", {**args, "prompt": "add a scarf"}, read_timeout_seconds=60)).is_error


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_bad_and_expired_task_ids_are_clear_errors(settings, cat, mode):
    from tests.conftest import changed

    server = LegoEditServer(Runtime.from_settings(changed(settings, builder="rules", task_ttl=0.5)))
    Image.open(cat).save(settings.allowed_roots[0] / "cat.png")
    args = {"image": str(settings.allowed_roots[0] / "cat.png"), "instruction": "make it warmer"}
    async with Client(server, mode=mode, extensions=[TasksClient()] if mode == "auto" else []) as client:
        for method in ("tasks/get", "tasks/cancel"):
            with pytest.raises(MCPError) as err:
                await ask(client, method, taskId="not-a-task")
            assert err.value.error.code == INVALID_PARAMS and "Task not found" in err.value.error.message
        task_id = await (start_modern(client, "lego_edit", args) if mode == "auto" else start_legacy(client, "lego_edit", args, ttl=400))
        assert (await poll(client, task_id))[-1]["status"] == "completed"
        await anyio.sleep(0.6)
        with pytest.raises(MCPError) as err:
            await ask(client, "tasks/get", taskId=task_id)
        assert err.value.error.code == INVALID_PARAMS and "expired" in err.value.error.message


async def test_without_the_extension_calls_are_answered_as_before_and_tasks_refused(settings, photo_file):
    from tests.conftest import changed

    server = LegoEditServer(Runtime.from_settings(changed(settings, builder="rules")))
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with Client(server) as client:
        result = await client.call_tool("lego_edit", {"image": str(photo_file), "instruction": "make it warmer"}, progress_callback=on_progress)
        assert not result.is_error and progress
        with pytest.raises(MCPError) as err:
            await ask(client, "tasks/get", taskId="x")
        assert err.value.error.code == -32021  # missing required client capability


async def test_short_tools_and_a_full_store_run_directly(settings, photo_file):
    from tests.conftest import changed

    server = LegoEditServer(Runtime.from_settings(changed(settings, builder="rules", max_tasks=1)))
    args = {"image": str(photo_file), "instruction": "make it warmer"}
    async with Client(server, extensions=[TasksClient()]) as client:
        plain = await client.session.call_tool("adjust", {"image": str(photo_file), "warmth": 0.3}, allow_claimed=True)
        assert not isinstance(plain, TaskHandle)  # a CPU brick: quick, never a task
        first = await start_modern(client, "lego_edit", args)
        await poll(client, first, until=lambda t: True)
        assert [r.task_id for r in server.tasks.store.owned_by("local")] == [first]  # in-memory and stdio callers are 'local'
        held = server.tasks.store.get(first)
        held.status = "working"
        server.tasks.store.save(held)  # pretend it still runs: the store is full
        second = await client.session.call_tool("lego_edit", args, allow_claimed=True)
        assert not isinstance(second, TaskHandle) and not second.is_error


@asynccontextmanager
async def http_client(url: str, token: str, mode: str):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        transport = streamable_http_client(url, http_client=http, max_sse_event_size=None)
        async with Client(transport, mode=mode, extensions=[TasksClient()] if mode == "auto" else []) as client:
            yield client


@pytest.fixture
def two_token_server(settings, tmp_path):
    port = free_port()
    env = {**os.environ, "LEGO_EDIT_TOKEN": "token-of-alice token-of-bob", "LEGO_EDIT_BUILDER": "rules"}
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, *server_args(settings, "--transport", "http", "--port", str(port))], env=env, stderr=stderr)
    wait_for_port(proc, port, log)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_http_a_task_belongs_to_its_token(two_token_server, photo_file, mode):
    args = {"image": str(photo_file), "instruction": "make it warmer"}
    async with http_client(two_token_server, "token-of-alice", mode) as alice:
        task_id = await (start_modern if mode == "auto" else start_legacy)(alice, "lego_edit", args)
    async with http_client(two_token_server, "token-of-bob", mode) as bob:
        for method in ("tasks/get", "tasks/cancel"):
            with pytest.raises(MCPError) as err:
                await ask(bob, method, taskId=task_id)
            assert "Task not found" in err.value.error.message
        if mode == "legacy":
            assert (await ask(bob, "tasks/list"))["tasks"] == []
    async with http_client(two_token_server, "token-of-alice", mode) as alice:  # a new connection, the same holder
        done = (await poll(alice, task_id))[-1]
    assert done["status"] == "completed"
    if mode == "auto":
        assert np.asarray(done["result"]["structuredContent"]["results"][0]["width"]) == photo("chelsea").shape[1]
