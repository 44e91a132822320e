"""Two stateless fronts (`serve --transport http`, backend ray) sharing one image store: a client
chains bricks across both by reference, in both protocol generations, and either front reads
what the other made."""

import base64
import io
import os
import subprocess
import sys
from contextlib import ExitStack

import numpy as np
import pytest
from PIL import Image

from tests.server.conftest import MODES
from tests.server.test_transports import free_port, http_client, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TOKEN = "s3cret-token"


@pytest.fixture
def two_fronts(ray_cluster, settings, tmp_path):
    pytest.importorskip("fsspec", reason="the shared store needs fsspec: pip install -e '.[scale]'")
    shared = (tmp_path / "shared").as_uri()
    with ExitStack() as stack:
        urls = []
        for name in ("a", "b"):
            port = free_port()
            args = ["-m", "server", "serve", "--transport", "http", "--port", str(port), "--allowed-roots", str(tmp_path),
                    "--cache-dir", str(tmp_path / name), "--state-dir", str(tmp_path / "state"), "--backend", "ray",
                    "--ray-address", ray_cluster, "--shared-store", shared]  # fmt: skip
            log = tmp_path / f"front-{name}.log"
            with log.open("w") as stderr:
                proc = subprocess.Popen([sys.executable, *args], env={**os.environ, "LEGO_EDIT_TOKEN": TOKEN}, stderr=stderr)
            stack.callback(lambda p=proc: (p.terminate(), p.wait(timeout=20)))
            wait_for_port(proc, port, log)
            urls.append(f"http://127.0.0.1:{port}/mcp")
        yield urls


def pixels(blob: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(blob))))


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_chains_bricks_across_two_fronts_by_reference(two_fronts, photo_file, mode):
    a, b = two_fronts
    async with http_client(a, mode) as front_a, http_client(b, mode) as front_b:
        cat = (await front_a.call_tool("segment_salient", {"image": str(photo_file)})).structured_content
        assert "mask" in cat, cat
        # front b takes front a's mask by its URI, and front a reads what front b made
        grey = await front_b.call_tool("adjust", {"image": str(photo_file), "mask": cat["mask"]["uri"], "saturation": -1.0})
        assert not grey.is_error, grey.content
        uri = grey.structured_content["image"]["uri"]
        edited = pixels((await front_a.read_resource(uri)).contents[0].blob)
        mask = pixels((await front_b.read_resource(cat["mask"]["uri"])).contents[0].blob) > 127
    original = np.asarray(Image.open(photo_file))
    assert np.array_equal(edited[~mask], original[~mask])  # outside the subject: untouched
    spread = edited.max(-1).astype(int) - edited.min(-1)
    assert 0.05 < mask.mean() < 0.95 and np.median(spread[mask]) <= 2  # the subject: grey
