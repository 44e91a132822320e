from pathlib import Path

import pytest
from PIL import Image

from server.app import LegoEditServer
from tests.conftest import photo


@pytest.fixture
def server(registry) -> LegoEditServer:
    return LegoEditServer(registry)


@pytest.fixture
def photo_file(settings) -> Path:
    """A real photo saved under the allowed root."""
    path = settings.allowed_roots[0] / "chelsea.png"
    Image.fromarray(photo("chelsea")).save(path)
    return path


MODES = ["auto", "legacy"]  # 2026-07-28 (discover) and the initialize handshake
