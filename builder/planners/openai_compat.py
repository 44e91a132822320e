"""The Builder behind any OpenAI-compatible chat-completions endpoint (e.g. vLLM serving it).

One user message: the image (a data URI, at most 1024 px on the long side) and the Builder
prompt, plus the errors of earlier plans when re-planning. Guided decoding goes through
`response_format: {"type": "json_schema", ...}` only: OpenAI, vLLM, SGLang and llama.cpp's
server all accept it, while vLLM's old `guided_json` was removed in vLLM 0.12 and OpenAI
refuses unknown fields. Under a schema a server constrains the whole answer, so free reasoning
survives only where the server splits it off first (vLLM with a `--reasoning-parser`, which
returns it as `message.reasoning`, formerly `reasoning_content`); a `<think>` block in the
content is read as well.
"""

from __future__ import annotations

import base64
import io
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from ..schema import workflow_json_schema
from .base import PlannerUnavailable, PlanRequest, PlanText, feedback_text, split_reasoning

if TYPE_CHECKING:
    import httpx2

_MAX_SIDE = 1024


class OpenAIPlanner:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        temperature: float = 0.0,
        max_tokens: int = 2048,
    ):
        """`model` None asks the server's `/models` for the one it serves (vLLM serves one)."""
        self.base_url = _checked(base_url.rstrip("/"))
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens

    async def plan(self, request: PlanRequest) -> PlanText:
        import httpx2

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.perf_counter()
        async with httpx2.AsyncClient(headers=headers, timeout=self.timeout) as http:
            if self.model is None:
                self.model = await self._served_model(http)
            model = self.model
            body = {
                "model": model,
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": image_data_uri(request.image)}},
                    {"type": "text", "text": feedback_text(request)},
                ]}],
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "workflow", "schema": workflow_json_schema(request.bricks, request.inits), "strict": False,
                }},
            }
            answer = await self._call(http, "POST", "/chat/completions", json=body)
        try:
            choice = answer["choices"][0]
            message = choice["message"]
            content = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise PlannerUnavailable(f"{self.base_url}/chat/completions answered without a message: {str(answer)[:300]}") from None
        think, workflow = split_reasoning(content)
        reasoning = (message.get("reasoning") or message.get("reasoning_content") or "").strip() or think
        details = {
            "planner": self.name, "model": answer.get("model", model), "usage": answer.get("usage"),
            "finish_reason": choice.get("finish_reason"), "seconds": round(time.perf_counter() - started, 3),
        }
        return PlanText(reasoning, workflow, details)

    async def _served_model(self, http: httpx2.AsyncClient) -> str:
        answer = await self._call(http, "GET", "/models")
        try:
            return answer["data"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise PlannerUnavailable(f"{self.base_url}/models lists no model; set the model name (--openai-model)") from None

    async def _call(self, http: httpx2.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        """One request; every failure becomes `PlannerUnavailable` naming the URL."""
        import httpx2

        url = self.base_url + path
        try:
            response = await http.request(method, url, **kwargs)
        except httpx2.TimeoutException:
            raise PlannerUnavailable(f"the Builder endpoint {url} did not answer within {self.timeout:g} s") from None
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise PlannerUnavailable(f"cannot reach the Builder endpoint {url}: {str(exc) or type(exc).__name__}") from None
        if response.status_code >= 400:
            raise PlannerUnavailable(f"the Builder endpoint {url} answered {response.status_code}: {_error_text(response)}")
        try:
            return response.json()
        except ValueError:
            raise PlannerUnavailable(f"the Builder endpoint {url} did not answer JSON: {response.text[:300]!r}") from None


def _checked(url: str) -> str:
    """Refuse a URL no request could use, before the first plan."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError as exc:
        raise PlannerUnavailable(f"bad Builder endpoint URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlannerUnavailable(f"bad Builder endpoint URL {url!r}: expected http(s)://host[:port]/v1")
    return url


def _error_text(response: httpx2.Response) -> str:
    """The server's own message: OpenAI's {"error": {"message"}}, vLLM's {"message"}, else the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:500]
    return str(error)[:500]


def image_data_uri(image: np.ndarray) -> str:
    """The image as a data URI at most 1024 px on the long side: JPEG when opaque (small), else PNG."""
    if image.ndim == 3 and image.shape[2] == 4 and bool((image[..., 3] == 255).all()):
        image = image[..., :3]
    im = Image.fromarray(np.ascontiguousarray(image))
    im.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    opaque = im.mode in ("RGB", "L")
    im.save(buf, format="JPEG" if opaque else "PNG", **({"quality": 90} if opaque else {}))
    return f"data:image/{'jpeg' if opaque else 'png'};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
