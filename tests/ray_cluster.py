"""A local Ray cluster for the tests of backend = "ray": started once, with the deployments of
`lego-edit-mcp deploy` on it, stopped at the end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
