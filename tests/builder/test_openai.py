"""The openai planner against a real chat-completions server on loopback (http.server in a thread)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bricks import Registry
from builder.planners.base import PlannerUnavailable, PlanRequest
from builder.planners.openai_compat import OpenAIPlanner
from builder.planners.select import Planners
from builder.schema import workflow_json_schema
from builder.settings import PlanningSettings

pytestmark = pytest.mark.anyio

WORKFLOW = {
    "process": "make it warmer",
    "pipeline": [
        {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "warmth": 0.3}, "output": {"image": "step1[image]"}},
        {"result": "[step1[image]]"},
    ],
}
USAGE = {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960}
Reply = Callable[[str, dict[str, Any] | None], tuple[int, Any]]


def completion(content: str, **message: Any) -> tuple[int, dict[str, Any]]:
    return 200, {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "lego-builder", "usage": USAGE,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content, **message}}],
    }  # fmt: skip


class FakeEndpoint:
    """Records each request (path, headers, JSON body) and answers with `reply(path, body)`."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.requests: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
        self.release = threading.Event()  # lets a deliberately slow answer finish at teardown
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer(None)

            def do_POST(self) -> None:  # noqa: N802
                self._answer(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

            def _answer(self, body: dict[str, Any] | None) -> None:
                endpoint.requests.append((self.path, dict(self.headers), body))
                status, payload = endpoint.reply(self.path, body)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (the timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeEndpoint:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [body for path, _, body in self.requests if path == "/v1/chat/completions"]


@pytest.fixture
def serve() -> Iterator[Callable[[Reply], FakeEndpoint]]:
    started: list[FakeEndpoint] = []

    def start(reply: Reply) -> FakeEndpoint:
        started.append(FakeEndpoint(reply).start())
        return started[-1]

    yield start
    for endpoint in started:
        endpoint.stop()


def request(registry: Registry, image: np.ndarray, feedback: tuple[str, ...] = ()) -> PlanRequest:
    return PlanRequest(
        system_prompt="You are the Builder. Instruction: make it warmer",
        instruction="make it warmer",
        image=image,
        bricks=tuple(b.spec for b in registry.available()),
        inits={"image": "Image"},
        feedback=feedback,
    )


def sent_image(body: dict[str, Any]) -> tuple[str, Image.Image]:
    part = body["messages"][0]["content"][0]
    assert part["type"] == "image_url"
    header, _, data = part["image_url"]["url"].partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return header[len("data:") : -len(";base64")], Image.open(io.BytesIO(base64.b64decode(data)))


def sent_text(body: dict[str, Any]) -> str:
    part = body["messages"][0]["content"][1]
    assert part["type"] == "text"
    return part["text"]


async def test_plan_sends_image_prompt_and_schema_and_reads_a_think_block(serve, registry: Registry) -> None:  # noqa: ANN001
    endpoint = serve(lambda path, body: completion("<think>Warmer means the ADJUST brick.</think>\n" + json.dumps(WORKFLOW)))
    req = request(registry, np.full((600, 1500, 3), 120, np.uint8))
    plan = await OpenAIPlanner(endpoint.url, model="lego-builder", api_key="sk-test").plan(req)

    assert plan.reasoning == "Warmer means the ADJUST brick."
    assert json.loads(plan.workflow) == WORKFLOW
    assert plan.details["model"] == "lego-builder" and plan.details["usage"] == USAGE and plan.details["seconds"] >= 0
    [(path, headers, body)] = endpoint.requests
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "lego-builder" and body["temperature"] == 0.0
    mime, image = sent_image(body)
    assert mime == "image/jpeg" and image.size == (1024, 410)
    assert sent_text(body) == req.system_prompt
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "workflow"
    assert fmt["json_schema"]["schema"] == workflow_json_schema(req.bricks, req.inits)


async def test_reasoning_field_feedback_and_served_model(serve, registry: Registry, monkeypatch) -> None:  # noqa: ANN001
    """vLLM's reasoning parser puts the thinking beside the content; the model name comes from /models."""
    def reply(path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "xiaomi-research/lego-edit", "object": "model"}]}
        return completion(json.dumps(WORKFLOW), reasoning_content="The user wants warmth.")

    endpoint = serve(reply)
    monkeypatch.setenv("LEGO_EDIT_OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("LEGO_EDIT_OPENAI_URL", endpoint.url + "/")
    planner = Planners(PlanningSettings(), registry.models, registry.weights).get("openai")  # as the settings make it
    rgba = np.zeros((64, 48, 4), np.uint8)
    rgba[..., 3] = 128
    first = await planner.plan(request(registry, rgba))
    second = await planner.plan(request(registry, rgba, feedback=("step 1 `mask`: init[mask] was not given",)))

    assert first.reasoning == "The user wants warmth." and json.loads(first.workflow) == WORKFLOW
    assert second.workflow == first.workflow
    bodies = endpoint.chat_bodies()
    assert [path for path, _, _ in endpoint.requests].count("/v1/models") == 1
    assert [b["model"] for b in bodies] == ["xiaomi-research/lego-edit"] * 2
    assert all(h["Authorization"] == "Bearer sk-env" for _, h, _ in endpoint.requests)
    mime, image = sent_image(bodies[0])
    assert mime == "image/png" and image.mode == "RGBA" and image.size == (48, 64)
    assert "init[mask] was not given" not in sent_text(bodies[0])
    assert "step 1 `mask`: init[mask] was not given" in sent_text(bodies[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_unavailable(registry: Registry) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(PlannerUnavailable, match=f"cannot reach the Builder endpoint {url}/chat/completions"):
        await OpenAIPlanner(url, model="m").plan(request(registry, np.zeros((8, 8, 3), np.uint8)))


@pytest.mark.parametrize(
    ("status", "payload", "quoted"),
    [
        (500, "Internal Server Error", "answered 500: Internal Server Error"),
        (400, {"error": {"message": "json_schema is not supported", "type": "BadRequestError"}}, "answered 400: json_schema is not supported"),
        (404, {"object": "error", "message": "The model `m` does not exist.", "code": 404}, "answered 404: The model `m` does not exist."),
    ],
)
async def test_error_answers_are_unavailable_with_the_server_text(serve, registry: Registry, status, payload, quoted) -> None:  # noqa: ANN001
    endpoint = serve(lambda path, body: (status, payload))
    with pytest.raises(PlannerUnavailable, match=quoted) as info:
        await OpenAIPlanner(endpoint.url, model="m").plan(request(registry, np.zeros((8, 8, 3), np.uint8)))
    assert endpoint.url in str(info.value)


async def test_timeout_is_unavailable(serve, registry: Registry) -> None:  # noqa: ANN001
    def slow(path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        endpoint.release.wait(5)
        return completion(json.dumps(WORKFLOW))

    endpoint = serve(slow)
    with pytest.raises(PlannerUnavailable, match="did not answer within 0.2 s"):
        await OpenAIPlanner(endpoint.url, model="m", timeout=0.2).plan(request(registry, np.zeros((8, 8, 3), np.uint8)))


async def test_an_answer_without_a_message_is_unavailable(serve, registry: Registry) -> None:  # noqa: ANN001
    endpoint = serve(lambda path, body: (200, {"choices": []}))
    with pytest.raises(PlannerUnavailable, match="answered without a message"):
        await OpenAIPlanner(endpoint.url, model="m").plan(request(registry, np.zeros((8, 8, 3), np.uint8)))


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "http://127.0.0.1:99999/v1", "ftp://host/v1"])
def test_a_bad_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(PlannerUnavailable, match="bad Builder endpoint URL"):
        OpenAIPlanner(url)
