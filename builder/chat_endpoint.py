"""An OpenAI-compatible chat-completions endpoint, as the openai planner and judge use it.

One request at a time with a fresh client; every failure (unreachable, timeout, HTTP error,
not JSON) becomes the caller's "unavailable" error naming the URL and the server's own message.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from bricks.errors import LegoEditError

if TYPE_CHECKING:
    import httpx2

MAX_SIDE = 1024  # long side of the images sent


class ChatEndpoint:
    def __init__(
        self, base_url: str, *, role: str, unavailable: type[LegoEditError], model_flag: str, model: str | None = None,
        api_key: str | None = None, timeout: float = 120.0,
    ):  # fmt: skip
        """`role` names the endpoint in errors ("the Builder endpoint ..."), `model_flag` the setting
        of its model name; `model` None asks the server's `/models` for the one it serves (vLLM serves one)."""
        self.role = role
        self.model_flag = model_flag
        self.unavailable = unavailable
        self.base_url = self._checked(base_url.rstrip("/"))
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    async def complete(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
        """POST /chat/completions with `body` (its model filled in): (the answer, its first choice, the model)."""
        import httpx2

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with httpx2.AsyncClient(headers=headers, timeout=self.timeout) as http:
            if self.model is None:
                self.model = await self._served_model(http)
            answer = await self._call(http, "POST", "/chat/completions", json={"model": self.model, **body})
        try:
            choice = answer["choices"][0]
            choice["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self.unavailable(f"{self.base_url}/chat/completions answered without a message: {str(answer)[:300]}") from None
        return answer, choice, self.model

    async def _served_model(self, http: httpx2.AsyncClient) -> str:
        answer = await self._call(http, "GET", "/models")
        try:
            return answer["data"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise self.unavailable(f"{self.base_url}/models lists no model; set the model name ({self.model_flag})") from None

    async def _call(self, http: httpx2.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        import httpx2

        url = self.base_url + path
        try:
            response = await http.request(method, url, **kwargs)
        except httpx2.TimeoutException:
            raise self.unavailable(f"the {self.role} endpoint {url} did not answer within {self.timeout:g} s") from None
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise self.unavailable(f"cannot reach the {self.role} endpoint {url}: {str(exc) or type(exc).__name__}") from None
        if response.status_code >= 400:
            raise self.unavailable(f"the {self.role} endpoint {url} answered {response.status_code}: {_error_text(response)}")
        try:
            return response.json()
        except ValueError:
            raise self.unavailable(f"the {self.role} endpoint {url} did not answer JSON: {response.text[:300]!r}") from None

    def _checked(self, url: str) -> str:
        """Refuse a URL no request could use, before the first call."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError when out of range
        except ValueError as exc:
            raise self.unavailable(f"bad {self.role} endpoint URL {url!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.unavailable(f"bad {self.role} endpoint URL {url!r}: expected http(s)://host[:port]/v1")
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


def image_part(image: np.ndarray) -> dict[str, Any]:
    """A message part holding the image as a data URI at most 1024 px on the long side: JPEG when
    opaque (small), else PNG."""
    if image.ndim == 3 and image.shape[2] == 4 and bool((image[..., 3] == 255).all()):
        image = image[..., :3]
    im = Image.fromarray(np.ascontiguousarray(image))
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    opaque = im.mode in ("RGB", "L")
    im.save(buf, format="JPEG" if opaque else "PNG", **({"quality": 90} if opaque else {}))
    uri = f"data:image/{'jpeg' if opaque else 'png'};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": uri}}
