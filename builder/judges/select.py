"""Which judge scores an edit: the `judge` setting, with 'auto' deciding per call.

auto: the local Builder MLLM when one is configured, else an OpenAI-compatible endpoint when
one is configured (`judge_url`, else the planner's `openai_url`), else the host's model through
MCP sampling when the client offers it mid-call, else none (results are returned unjudged, and
the result says why).
"""

from __future__ import annotations

from bricks.gpu.config import ModelConfig
from bricks.gpu.manager import ModelManager

from ..editor import Verify
from ..settings import PlanningSettings
from .base import Judge, JudgeUnavailable

NO_JUDGE = ("no judge is available: configure the Builder model or --judge-url, or use a client that offers sampling "
            "(inside lego_edit: on the handshake protocol generation)")


def choose_judge(settings: PlanningSettings, models: ModelConfig, *, can_sample: bool) -> str:
    if settings.judge != "auto":
        return settings.judge
    if models.configured(("builder",)):
        return "transformers"
    if settings.judge_url or settings.openai_url:
        return "openai"
    return "sampling" if can_sample else "off"


def verify_of(settings: PlanningSettings) -> Verify:
    return Verify(settings.judge_threshold, settings.verify_attempts, settings.verify_seconds)


class Judges:
    """Builds each judge once; the transformers one shares the manager's `builder` model."""

    def __init__(self, settings: PlanningSettings, models: ModelManager):
        self.settings = settings
        self.models = models
        self._made: dict[str, Judge] = {}

    def get(self, name: str) -> Judge:
        if name == "off":
            raise JudgeUnavailable("the judge is off (--judge off)" if self.settings.judge == "off" else NO_JUDGE)
        if name == "sampling":
            raise JudgeUnavailable("the sampling judge needs an MCP client that offers sampling")
        if name not in self._made:
            self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str) -> Judge:
        s = self.settings
        if name == "transformers":
            from .mllm import MLLMJudge

            return MLLMJudge(self.models)
        if name == "openai":
            url = s.judge_url or s.openai_url
            if not url:
                raise JudgeUnavailable("the openai judge needs --judge-url (or LEGO_EDIT_JUDGE_URL) or --openai-url")
            from .openai_compat import OpenAIJudge

            key = s.judge_api_key or (s.openai_api_key if not s.judge_url else None)
            model = s.judge_model or (s.openai_model if not s.judge_url else None)
            return OpenAIJudge(url, model=model, api_key=key.get_secret_value() if key is not None else None)
        raise JudgeUnavailable(f"unknown judge '{name}'")
