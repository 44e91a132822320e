"""The Builder's settings: which planner plans `lego_edit`, with what, how often it may retry, and
which judge scores its results against what bar."""

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
    judge: Literal["auto", "off", "transformers", "openai", "sampling"] = Field("auto", description=
        "the judge that scores lego_edit's results and judge_edit's: auto, off, transformers, openai or sampling")
    judge_url: str | None = Field(None, description=
        "base URL of an OpenAI-compatible endpoint serving the judge VLM (default: openai_url)")
    judge_model: str | None = Field(None, description="model name at the judge endpoint (default: the one it serves)")
    judge_api_key: SecretStr | None = Field(None, description="API key sent to the judge endpoint (default: openai_api_key)")
    judge_threshold: float = Field(6.0, ge=0, le=10, description=
        "overall judge score (0-10) that ends lego_edit's search; below it, lego_edit re-plans with the critique")
    verify_attempts: int = Field(3, ge=1, le=10, description="judged attempts of one lego_edit at most")
    verify_seconds: float = Field(300.0, gt=0, description=
        "seconds one lego_edit may spend re-planning after judged attempts (the first attempt always runs)")
