"""The Builder's settings: which planner plans `lego_edit`, with what, and how often it may retry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from bricks.settings import Section, UserPath


class PlanningSettings(Section):
    """How lego_edit plans."""

    builder: Literal["auto", "transformers", "openai", "sampling", "rules"] = Field("auto", description=
        "the planner of lego_edit: auto, transformers, openai, sampling or rules")
    builder_template: UserPath | None = Field(None, description="a prompt template file replacing the built-in Builder prompt")
    openai_url: str | None = Field(None, description=
        "base URL of an OpenAI-compatible endpoint serving the Builder, e.g. http://127.0.0.1:8001/v1")
    openai_model: str | None = Field(None, description="model name at that endpoint (default: the one it serves)")
    openai_api_key: SecretStr | None = Field(None, description="API key sent to that endpoint")
    max_replans: int = Field(2, ge=0, le=10, description="how often lego_edit re-plans after a plan fails validation or a step fails")
