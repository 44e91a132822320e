"""How bricks are grouped into Ray Serve deployments and how those are sized (no Ray needed)."""

import pytest

from bricks import Registry, SchemaError
from bricks.deployments import adapter_of, deployment_name, families, family_of, options
from bricks.gpu.config import ModelConfig
from bricks.ray_compute import RayCompute
from tests.conftest import changed


def test_families_group_the_bricks_that_share_a_replicas_models(registry):
    groups = families(registry.all())
    assert set(groups["flux_fill"]) == {"generative_fill", "refine_removal", "recolor_material", "change_environment", "change_pose", "stylize"}
    assert {"segment_salient", "segment_by_text"} <= set(groups["segment"]) and "adjust" in groups["cpu"]
    assert sum(map(len, groups.values())) == len([b for b in registry.all() if b.runner is None])
    assert "cpu" not in families(registry.all(), cpu_bricks=False)
    assert adapter_of(registry.get("recolor_material")) == "lora_rcm" and adapter_of(registry.get("generative_fill")) is None
    assert family_of(registry.get("adjust")) == "cpu" and deployment_name("cpu") == "bricks-cpu"


def test_sizes_come_from_the_serve_tables_with_gpus_only_where_there_are_some(tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('[serve.flux_fill]\nnum_replicas = "auto"\nautoscaling = {max_replicas = 3}\n[serve.segment]\nnum_gpus = 0.25\n')
    config = ModelConfig.load(models)
    fill = options("flux_fill", config, cluster_gpus=2)
    assert fill["ray_actor_options"] == {"num_cpus": 0.25, "num_gpus": 1} and fill["autoscaling_config"] == {"max_replicas": 3}
    assert options("segment", config, cluster_gpus=2)["ray_actor_options"]["num_gpus"] == 0.25
    assert options("qwen_image_edit", config, cluster_gpus=0)["ray_actor_options"]["num_gpus"] == 0  # no GPU in the cluster
    assert options("cpu", config, cluster_gpus=2) | {"ray_actor_options": None} == {
        "name": "bricks-cpu", "ray_actor_options": None, "max_ongoing_requests": 4, "num_replicas": 1}


def test_a_bad_serve_table_names_the_file_and_the_key(tmp_path):
    models = tmp_path / "models.toml"
    models.write_text("[serve.flux_fill]\nnum_gpu = 1\n")
    with pytest.raises(SchemaError, match=r"models.toml: \[serve.flux_fill\]: num_gpu: Extra inputs are not permitted"):
        ModelConfig.load(models)


def test_a_front_of_backend_ray_keeps_composites_and_optionally_cpu_bricks(settings):
    front = Registry.from_settings(changed(settings, backend="ray", ray_local_cpu_bricks=True))
    assert isinstance(front.compute, RayCompute) and not front.compute.runs(front.get("adjust"))
    assert front.compute.runs(front.get("generative_fill"))
    assert RayCompute(None, "x").runs(front.get("adjust"))
