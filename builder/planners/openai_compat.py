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

import time

from ..chat_endpoint import ChatEndpoint, image_part
from ..schema import workflow_json_schema
from .base import PlannerUnavailable, PlanRequest, PlanText, feedback_text, split_reasoning


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
        self.endpoint = ChatEndpoint(
            base_url, role="Builder", unavailable=PlannerUnavailable, model_flag="--openai-model",
            model=model, api_key=api_key, timeout=timeout,
        )
        self.temperature = temperature
        self.max_tokens = max_tokens

    async def plan(self, request: PlanRequest) -> PlanText:
        started = time.perf_counter()
        answer, choice, model = await self.endpoint.complete({
            "messages": [{"role": "user", "content": [image_part(request.image), {"type": "text", "text": feedback_text(request)}]}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "workflow", "schema": workflow_json_schema(request.bricks, request.inits), "strict": False,
            }},
        })  # fmt: skip
        message = choice["message"]
        think, workflow = split_reasoning(message.get("content") or "")
        reasoning = (message.get("reasoning") or message.get("reasoning_content") or "").strip() or think
        details = {
            "planner": self.name, "model": answer.get("model", model), "usage": answer.get("usage"),
            "finish_reason": choice.get("finish_reason"), "seconds": round(time.perf_counter() - started, 3),
        }
        return PlanText(reasoning, workflow, details)
