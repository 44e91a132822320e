"""Shared fixtures: a registry on a temporary cache, real photos, and a sync way to call bricks."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest

from bricks import Registry, StoredImage
from bricks.cpu.weights import Weights
from server.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools a developer registered in ~/.local/state never leak into tests (subprocesses included)."""
    monkeypatch.setenv("LEGO_EDIT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(allowed_roots=(tmp_path,), cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", backend="cpu")


def changed(settings: Settings, **changes: object) -> Settings:
    """`settings` with the named settings changed."""
    return Settings(**(settings.values() | changes))


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry.from_settings(settings)


def photo(name: str) -> np.ndarray:
    """A real photo from scikit-image's bundled data (astronaut, chelsea, coffee, rocket, ...)."""
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)())


class Bricks:
    """Call bricks synchronously with arrays in, arrays out (through `Registry.call`)."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def put(self, array: np.ndarray) -> str:
        return self.registry.store.put(array).uri

    def __call__(self, name: str, **args: object) -> dict[str, object]:
        args = {k: self.put(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
        out = anyio.run(self.registry.call, name, args)
        return {k: self.registry.store.get(v.id) if isinstance(v, StoredImage) else v for k, v in out.items()}


@pytest.fixture(params=["here", pytest.param("ray", marks=pytest.mark.slow)])
def run(request: pytest.FixtureRequest, settings: Settings) -> Bricks:
    """Bricks called through the registry: computed here, and (backend = "ray") in a Ray Serve replica."""
    if request.param == "here":
        return Bricks(request.getfixturevalue("registry"))
    request.getfixturevalue("ray_cluster")
    return Bricks(Registry.from_settings(changed(settings, backend="ray")))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray instance with every family's deployment (`lego-edit-mcp deploy`), for the session."""
    from tests.ray_cluster import started

    with started(tmp_path_factory.mktemp("ray")) as address:
        yield address


def outline(name: str) -> np.ndarray:
    """The main subject of `photo(name)` as outlined by hand (tests/bricks/data/subject_labels.json), boolean."""
    import json

    import cv2

    shapes = json.loads((Path(__file__).parent / "bricks" / "data" / "subject_labels.json").read_text())[name]
    mask = np.zeros(photo(name).shape[:2], np.uint8)
    for shape in shapes:
        if "polygon" in shape:
            cv2.fillPoly(mask, [np.array(shape["polygon"], np.int32)], 255)
        else:
            cx, cy, ax, ay, angle = shape["ellipse"]
            cv2.ellipse(mask, (cx, cy), (ax, ay), angle, 0, 360, 255, -1)
    return mask > 0


@functools.cache
def trained() -> Weights:
    """The trained files where `fetch-models` put them: the settings' models directory."""
    return Weights(Settings().bricks.models_dir)
