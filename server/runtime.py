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
from builder.planners.select import Planners, choose, planner_for
from builder.prompt import BuilderPrompt

from .runtime_tools import RuntimeTools
from .settings import Settings

if TYPE_CHECKING:
    from bricks.gpu.manager import ModelManager
    from builder.planners.base import Planner

SERVER_TOOLS = ("lego_edit", "plan_edit", "run_workflow", "register_tool", "unregister_tool")
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
    problems: dict[str, str] = field(default_factory=dict)
    """Sources and saved tools that did not load (source -> why), for the CLI to print."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        registry = Registry.from_settings(settings, RESERVED)  # its image store, model configuration and sources
        tools = RuntimeTools(registry, settings.tools.state_dir, settings.remote)
        problems = dict(registry.sources.problems) | tools.restore()
        prompt = BuilderPrompt(registry, settings.planning.builder_template)
        return cls(settings, registry, tools, prompt, Planners(settings.planning, registry.models, registry.weights), problems)

    @property
    def store(self) -> ImageStore:
        return self.registry.store

    @property
    def models(self) -> ModelManager:
        """The one model manager: the GPU bricks get it as `ctx.models`, the MLLM planner shares it."""
        return self.registry.models

    def editor(self, planner: Planner | None = None) -> Editor:
        """An editor planning with `planner`, by default the one the settings choose (sampling aside:
        that planner needs the client of one call)."""
        if planner is None:
            planner = planner_for(self.planners, choose(self.settings.planning, self.registry.model_config, can_sample=False))
        return Editor(self.registry, planner, self.prompt, max_retries=self.settings.planning.max_replans)
