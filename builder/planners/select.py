"""Which planner plans an edit: the `builder` setting, with 'auto' deciding per call.

auto: the local MLLM when one is configured, else an OpenAI-compatible endpoint when one is
configured, else the host's model through MCP sampling when the client offers it, else rules.
The local MLLM is the model configuration's `builder` entry, shared with the GPU bricks that
ask it questions (ADD-PRED, CMI-PRED): one copy in memory, under the model manager.
"""

from __future__ import annotations

from bricks.cpu.weights import Weights
from bricks.gpu.config import ModelConfig
from bricks.gpu.manager import ModelManager

from ..settings import PlanningSettings
from .base import Planner, PlannerUnavailable, PlanRequest, PlanText


def choose(settings: PlanningSettings, models: ModelConfig, *, can_sample: bool) -> str:
    if settings.builder != "auto":
        return settings.builder
    if models.configured(("builder",)):
        return "transformers"
    if settings.openai_url:
        return "openai"
    return "sampling" if can_sample else "rules"


class Planners:
    """Builds each planner once (the MLLM loads its weights on first use and stays loaded)."""

    def __init__(self, settings: PlanningSettings, models: ModelManager, weights: Weights):
        """`models`: the registry's manager, whose `builder` model the MLLM planner shares with
        the bricks; `weights`: its trained files, whose MiniLM the rules planner reads with."""
        self.settings = settings
        self.models = models
        self.weights = weights
        self._made: dict[str, Planner] = {}

    def get(self, name: str) -> Planner:
        if name == "sampling":
            raise PlannerUnavailable("the sampling planner needs an MCP client that offers sampling")
        if name not in self._made:
            self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str) -> Planner:
        s = self.settings
        if name == "rules":
            from .rules import RulesPlanner

            return RulesPlanner(self.weights)
        if name == "transformers":
            from bricks.gpu.mllm import load_builder

            from .mllm import MLLMPlanner

            entry, models = self.models.config.entry("builder"), self.models
            return MLLMPlanner(entry.id, subfolder=entry.subfolder, loader=lambda: models.load("builder", load_builder)[1])
        if name == "openai":
            if not s.openai_url:
                raise PlannerUnavailable("the openai planner needs --openai-url (or LEGO_EDIT_OPENAI_URL)")
            from .openai_compat import OpenAIPlanner

            key = s.openai_api_key.get_secret_value() if s.openai_api_key is not None else None
            return OpenAIPlanner(s.openai_url, model=s.openai_model, api_key=key)
        raise PlannerUnavailable(f"unknown builder '{name}'")


class Fallback:
    """'auto' with a configured model: use it while it works; once it cannot load, the secondary
    plans (a note says so), for the re-plans of this edit too."""

    def __init__(self, primary: Planner, secondary: Planner):
        self.primary = primary
        self.secondary = secondary
        self.current = primary

    @property
    def name(self) -> str:
        return self.current.name

    @property
    def deterministic(self) -> bool:
        """Whether re-planning could change anything: a question for the planner planning now."""
        return getattr(self.current, "deterministic", False)

    async def plan(self, request: PlanRequest) -> PlanText:
        if self.current is self.secondary:
            return await self.secondary.plan(request)
        try:
            return await self.primary.plan(request)
        except PlannerUnavailable as exc:
            self.current = self.secondary
            text = await self.secondary.plan(request)
            note = f"({self.primary.name} planner unavailable: {exc}) "
            return PlanText(note + text.reasoning, text.workflow, {**text.details, "fallback_from": self.primary.name})


def planner_for(planners: Planners, name: str) -> Planner:
    """The planner called `name`; under 'auto', a configured model falls back to rules when it cannot load."""
    planner = planners.get(name)
    if planners.settings.builder == "auto" and name in ("transformers", "openai"):
        return Fallback(planner, planners.get("rules"))
    return planner
