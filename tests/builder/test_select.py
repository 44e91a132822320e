"""Which planner plans: 'auto', and the Builder shared with the GPU bricks."""

from pathlib import Path

from bricks import Registry
from bricks.gpu.mllm import load_builder
from builder.planners.select import Planners, choose
from builder.settings import PlanningSettings
from server.settings import Settings


def test_auto_without_a_model_samples_when_offered_else_rules(registry):
    assert choose(registry.settings.planning, registry.model_config, can_sample=True) == "sampling"
    assert choose(registry.settings.planning, registry.model_config, can_sample=False) == "rules"
    assert choose(PlanningSettings(builder="rules"), registry.model_config, can_sample=True) == "rules"


def test_a_configured_builder_is_chosen_and_loaded_once_for_planner_and_bricks(tiny_builder: Path, tmp_path):
    settings = Settings(cache_dir=tmp_path / "cache", allowed_roots=(tmp_path,), device="cpu",
                        builder_model=str(tiny_builder), builder_subfolder="Builder")  # as --builder-model does
    registry = Registry.from_settings(settings)
    assert choose(settings.planning, registry.model_config, can_sample=True) == "transformers"
    planner = Planners(settings.planning, registry.models, registry.weights).get("transformers")
    assert planner.load() is registry.models.load("builder", load_builder)[1]  # the bricks' copy
    assert registry.models.loads["builder"] == 1
    assert registry.get("ADD-PRED") in registry.available()  # and the Builder's bricks are listed on CPU
