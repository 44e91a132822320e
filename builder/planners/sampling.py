"""The MCP host's own model as the Builder, through MCP sampling.

The server asks the first plan with the SDK's portable `Sample` resolver marker (both protocol
generations); a re-plan after an error needs a second sampling request in the middle of the
call, which only the handshake generation allows, so there `ask` is given and used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .base import PlannerUnavailable, PlanRequest, PlanText, split_reasoning

Ask = Callable[[PlanRequest], Awaitable[str]]


class SamplingPlanner:
    name = "sampling"

    def __init__(self, first_answer: str, ask: Ask | None = None):
        self._first: str | None = first_answer
        self._ask = ask

    async def plan(self, request: PlanRequest) -> PlanText:
        if self._first is not None:
            text, self._first = self._first, None
        elif self._ask is not None:
            text = await self._ask(request)
        else:
            raise PlannerUnavailable("re-planning through sampling needs a client on the initialize handshake")
        reasoning, workflow = split_reasoning(text)
        return PlanText(reasoning, workflow, {"planner": "sampling"})
