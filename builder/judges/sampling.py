"""The MCP host's own model as the judge, through MCP sampling.

`ask` sends one sampling request (the original, the edit and the rubric) and returns the text
of the answer; the server builds it from the call's session. Inside `lego_edit` that is only
possible on the handshake protocol generation; `judge_edit` samples before its body runs
(the SDK's `Sample` resolver), on both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .base import JudgeRequest, Verdict, parse_verdict

Ask = Callable[[JudgeRequest], Awaitable[str]]


class SamplingJudge:
    name = "sampling"

    def __init__(self, ask: Ask):
        self._ask = ask

    async def judge(self, request: JudgeRequest) -> Verdict:
        started = time.perf_counter()
        return parse_verdict(await self._ask(request), self.name, time.perf_counter() - started)
