"""How bricks are grouped into Ray Serve deployments (backend = "ray"): one per model family.

A family is what a replica keeps loaded: the FLUX Fill base with its task LoRAs, each general
editor, the segmenters, the Builder MLLM, and `cpu` for the bricks without a model. Bricks of one
family share a replica's memory; a family is sized by its `[serve.<family>]` table of the models
file (`bricks.gpu.config.Deployment`). Nothing here imports Ray.
"""

from __future__ import annotations

from .brick import Brick
from .gpu.config import Deployment, ModelConfig

CPU = "cpu"
_FAMILY_OF_KEY = {"res": "segment", "salient": "segment"}  # text-referred and salient segmenters share a replica


def family_of(brick: Brick) -> str:
    """The deployment that runs `brick`: the family of its first model, or `cpu`."""
    models = brick.spec.models if "gpu" in brick.spec.backends else ()
    if not models:
        return CPU
    return _FAMILY_OF_KEY.get(models[0], models[0])


def deployment_name(family: str) -> str:
    return f"bricks-{family}"


def adapter_of(brick: Brick) -> str | None:
    """The task LoRA a FLUX Fill brick switches on (Serve routes its calls to replicas holding it)."""
    return next((key for key in brick.spec.models if key.startswith("lora_")), None)


def families(bricks: list[Brick], *, cpu_bricks: bool = True) -> dict[str, list[str]]:
    """family -> the names of its bricks; code bricks only (composites and remote tools run in the front)."""
    out: dict[str, list[str]] = {}
    for brick in bricks:
        if brick.runner is None and (cpu_bricks or family_of(brick) != CPU):
            out.setdefault(family_of(brick), []).append(brick.name)
    return out


def options(family: str, config: ModelConfig, *, cluster_gpus: float) -> dict[str, object]:
    """Serve deployment options of a family, from its `[serve.<family>]` table. A model family asks
    for one GPU per replica unless its table says otherwise, the device is cpu, or the cluster has
    no GPU at all (then its replicas run the bricks' CPU backends, as a front without a GPU would)."""
    table = config.serve.get(family, Deployment())
    cpu_only = family == CPU or config.runtime.device == "cpu" or cluster_gpus == 0
    gpus = table.num_gpus if table.num_gpus is not None else 0 if cpu_only else 1
    opts: dict[str, object] = {
        "name": deployment_name(family),
        "ray_actor_options": {"num_cpus": table.num_cpus, "num_gpus": gpus},
        "max_ongoing_requests": table.max_ongoing_requests,
    }
    if table.num_replicas == "auto":
        opts["autoscaling_config"] = table.autoscaling or {"min_replicas": 1, "max_replicas": 4}
    else:
        opts["num_replicas"] = table.num_replicas
    return opts
