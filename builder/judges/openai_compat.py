"""The judge behind any OpenAI-compatible chat-completions endpoint serving a VLM (vLLM, SGLang,
OpenAI, ...): both images and the rubric in one message, the answer held to the verdict's JSON
Schema by `response_format` and checked again on arrival."""

from __future__ import annotations

import time

from ..chat_endpoint import ChatEndpoint, image_part
from .base import VERDICT_SCHEMA, JudgeRequest, JudgeUnavailable, Verdict, parse_verdict


class OpenAIJudge:
    name = "openai"

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None, timeout: float = 120.0):
        self.endpoint = ChatEndpoint(
            base_url, role="judge", unavailable=JudgeUnavailable, model_flag="--judge-model",
            model=model, api_key=api_key, timeout=timeout,
        )

    async def judge(self, request: JudgeRequest) -> Verdict:
        started = time.perf_counter()
        answer, choice, model = await self.endpoint.complete({
            "messages": [{"role": "user", "content": [
                image_part(request.source), image_part(request.edited), {"type": "text", "text": request.prompt()},
            ]}],
            "temperature": 0.0,
            "max_tokens": 600,
            "response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True}},
        })  # fmt: skip
        return parse_verdict(choice["message"].get("content") or "", f"{self.name} ({answer.get('model') or model})", time.perf_counter() - started)
