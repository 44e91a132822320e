"""The composition root: every part of a running lego-edit-mcp, built once from the settings.

The MCP server and the CLI both take a `Runtime`; neither builds parts of its own. Order
matters only where parts depend on each other: the store and the model configuration first,
then the registry with every source, then the tools registered at run time (composites use
bricks), then the Builder's prompt and planners over that registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bricks import ImageStore, Registry
from builder.editor import Editor
from builder.judges.base import JudgeUnavailable
from builder.judges.sampling import Ask as JudgeAsk
from builder.judges.sampling import SamplingJudge
from builder.judges.select import Judges, choose_judge, verify_of
from builder.planners.select import Planners, choose, planner_for
from builder.prompt import BuilderPrompt

from .runtime_tools import RuntimeTools
from .settings import Settings

if TYPE_CHECKING:
    from bricks.gpu.manager import ModelManager
    from builder.judges.base import Judge
    from builder.planners.base import Planner

SERVER_TOOLS = ("lego_edit", "plan_edit", "run_workflow", "judge_edit", "register_tool", "unregister_tool")
RESERVED = {name: f"the server's own tool '{name}'" for name in SERVER_TOOLS}
"""Names no brick may take."""


@dataclass
class Runtime:
    settings: Settings
    registry: Registry
    tools: RuntimeTools
    """The tools added with register_tool (saved in the state directory, restored here)."""
    prompt: BuilderPrompt
    planners: Planners
    judges: Judges
    problems: dict[str, str] = field(default_factory=dict)
    """Sources and saved tools that did not load (source -> why), for the CLI to print."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        registry = Registry.from_settings(settings, RESERVED)  # its image store, model configuration and sources
        tools = RuntimeTools(registry, settings.tools.state_dir, settings.remote)
        problems = dict(registry.sources.problems) | tools.restore()
        prompt = BuilderPrompt(registry, settings.planning.builder_template)
        planners = Planners(settings.planning, registry.models, registry.weights)
        return cls(settings, registry, tools, prompt, planners, Judges(settings.planning, registry.models), problems)

    @property
    def store(self) -> ImageStore:
        return self.registry.store

    @property
    def models(self) -> ModelManager:
        """The one model manager: the GPU bricks get it as `ctx.models`, the MLLM planner shares it."""
        return self.registry.models

    def judge(self, ask: JudgeAsk | None = None) -> tuple[Judge | None, str]:
        """The judge the settings choose (the host's model when `ask` can reach it), or None and why."""
        name = choose_judge(self.settings.planning, self.registry.model_config, can_sample=ask is not None)
        if name == "sampling" and ask is not None:
            return SamplingJudge(ask), ""
        try:
            return self.judges.get(name), ""
        except JudgeUnavailable as exc:
            return None, str(exc)

    def editor(self, planner: Planner | None = None, judge_ask: JudgeAsk | None = None) -> Editor:
        """An editor planning with `planner`, by default the one the settings choose (sampling aside:
        that planner needs the client of one call), judged by the judge they choose."""
        if planner is None:
            planner = planner_for(self.planners, choose(self.settings.planning, self.registry.model_config, can_sample=False))
        judge, why_not = self.judge(judge_ask)
        planning = self.settings.planning
        return Editor(self.registry, planner, self.prompt, max_retries=planning.max_replans, judge=judge,
                      verify=verify_of(planning), no_judge=why_not)  # fmt: skip
