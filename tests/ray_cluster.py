"""A local Ray cluster for the tests of backend = "ray": started once, with the deployments of
`lego-edit-mcp deploy` on it, stopped at the end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bricks import Registry
from server.settings import Settings

LOGICAL_CPUS = 8  # Ray's bookkeeping, not the machine's: nine families' replicas fit on 2 cores


@contextlib.contextmanager
def started(tmp: Path, families: list[str] | None = None, models_file: Path | None = None) -> Iterator[str]:
    """Ray on this machine with the families' deployments; yields the address fronts join."""
    ray = pytest.importorskip("ray", reason="backend ray needs Ray Serve: pip install -e '.[scale]'")
    from ray import serve

    from bricks.ray_serve import deploy

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback test cluster; no token file in ~/.ray
    context = ray.init(num_cpus=LOGICAL_CPUS, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp / "ray"))
    try:
        settings = Settings(cache_dir=tmp / "cache", state_dir=tmp / "state", backend="ray", models_file=models_file)
        deploy(settings, address=None, only=families)
        yield context.address_info["address"]
    finally:
        serve.shutdown()
        ray.shutdown()


_app: dict[str, str] = {}  # the one tiny-model app deployed now: models file text -> its name


def through_ray(request: pytest.FixtureRequest, settings: Settings) -> Registry:
    """A front (backend ray) whose bricks compute in deployments made with `settings` (the
    families of every brick available with them), deployed once per models file; one such app
    at a time, to keep the replicas few on a small machine."""
    from ray import serve

    from bricks.deployments import family_of
    from bricks.ray_serve import deploy
    from tests.conftest import changed

    request.getfixturevalue("ray_cluster")
    text = settings.bricks.models_file.read_text() if settings.bricks.models_file else ""
    if text not in _app:
        for old in _app.values():
            serve.delete(old)
        _app.clear()
        local = Registry.from_settings(settings)
        families = sorted({family_of(b) for b in local.available() if b.runner is None})
        _app[text] = f"tiny-{abs(hash(text)) % 10**8}"
        deploy(changed(settings, backend="ray", ray_app=_app[text]), address=None, only=families)
    return Registry.from_settings(changed(settings, backend="ray", ray_app=_app[text]))


def model_loads(registry: Registry, family: str) -> dict[str, int]:
    """How often each model was loaded where `registry`'s bricks compute (here, or its replica)."""
    if registry.compute is None:
        return dict(registry.models.loads)
    return registry.compute._handle(family).loads.remote().result()
