"""The `transformers` judge: the Builder MLLM (the manager's shared `builder` model) shown the
original and the edit, its answer held by grammar to the verdict's JSON Schema; a cancelled
caller stops the generation at the next token."""

from __future__ import annotations

import json
import time

import anyio.from_thread
import anyio.to_thread

from bricks.errors import BrickFailed
from bricks.gpu.manager import ModelManager

from .base import CRITIQUE_CHARS, VERDICT_SCHEMA, JudgeRequest, JudgeUnavailable, Verdict, parse_verdict

COMPACT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}  # no room to ramble in spaces
GRAMMAR = "start: %json " + json.dumps({**VERDICT_SCHEMA, "x-guidance": COMPACT})
MAX_TOKENS = 4 * CRITIQUE_CHARS  # room for the longest critique even in escapes and single-byte tokens


class MLLMJudge:
    name = "transformers"

    def __init__(self, models: ModelManager):
        self.models = models

    async def judge(self, request: JudgeRequest) -> Verdict:
        from bricks.gpu.mllm import ask

        def answer() -> str:
            text, _ = ask(self.models, request.source, request.prompt(), more=(request.edited,), grammar=GRAMMAR,
                          max_new_tokens=MAX_TOKENS, what="judge_edit", check_cancelled=anyio.from_thread.check_cancelled)  # fmt: skip
            return text

        started = time.perf_counter()
        try:
            text = await anyio.to_thread.run_sync(answer)
        except BrickFailed as exc:
            raise JudgeUnavailable(f"the transformers judge cannot run: {exc}") from None
        return parse_verdict(text, self.name, time.perf_counter() - started)
