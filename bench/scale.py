"""Load over loopback: one server against two stateless fronts with their bricks on Ray Serve.

N concurrent MCP clients (1, 4, 16; 2026-07-28 over streamable HTTP) each call ADJUST on a stored
512x512 photo by reference, again and again:
(a) one `serve --transport http` process computing its bricks itself;
(b) two such fronts with backend ray (clients spread over both), one shared image store, the
    bricks' `cpu` family deployed on a local Ray instance with 2 replicas.
Prints calls/s and p50/p95 latency per setup and load, and (b) against (a) as ratios of one run.
What a 2-core machine can show: the cost of the hop (a front, a Serve request, arrays through the
object store) and that nothing breaks under load; not the scaling, which needs more cores or GPUs.

Run: .venv/bin/python bench/scale.py [--calls 20]   (needs the scale extra)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import numpy as np
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

TOKEN = "bench-token"
LOADS = (1, 4, 16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def front(tmp: Path, name: str, *extra: str):
    """A `serve --transport http` process; yields its URL once it listens."""
    port = free_port()
    args = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port), "--allowed-roots", str(tmp),
            "--cache-dir", str(tmp / name), "--state-dir", str(tmp / "state"), *extra]  # fmt: skip
    log = (tmp / f"{name}.log").open("w")
    proc = subprocess.Popen(args, env={**os.environ, "LEGO_EDIT_TOKEN": TOKEN}, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"front {name} did not start: {(tmp / f'{name}.log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


async def load(urls: list[str], photo: Path, clients: int, calls: int) -> tuple[float, list[float]]:
    """`clients` clients (spread over `urls`), `calls` calls each; returns calls/s and latencies in ms."""
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
            async with Client(streamable_http_client(urls[i % len(urls)], http_client=http)) as client:
                first = await client.call_tool("adjust", {"image": str(photo), "warmth": 0.0})
                uri = first.structured_content["image"]["uri"]
                for k in range(calls):
                    t0 = time.perf_counter()
                    result = await client.call_tool("adjust", {"image": uri, "warmth": (k % 10) / 20})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    assert not result.is_error, result.content

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(clients):
            tg.start_soon(one, i)
    return clients * calls / (time.perf_counter() - started), latencies


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per client and load")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from bricks.ray_serve import deploy
    from server.settings import Settings

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from skimage import data

        photo = tmp / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        context = ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
        address = context.address_info["address"]
        models = tmp / "models.toml"
        models.write_text("[serve.cpu]\nnum_replicas = 2\n")
        deploy(Settings(cache_dir=tmp / "replicas", state_dir=tmp / "state", backend="ray", models_file=models), address=None, only=["cpu"])
        ray_flags = ("--backend", "ray", "--ray-address", address, "--shared-store", (tmp / "shared").as_uri())
        rows = []
        with front(tmp, "single") as single, front(tmp, "a", *ray_flags) as a, front(tmp, "b", *ray_flags) as b:
            for clients in LOADS:
                for name, urls in (("one server", [single]), ("2 fronts + Ray", [a, b])):
                    rate, lat = anyio.run(load, urls, photo, clients, args.calls)
                    rows.append((name, clients, rate, p(lat, 50), p(lat, 95)))
        ray.shutdown()

    print(f"ADJUST on a 512x512 photo by reference, {args.calls} calls per client, 2026-07-28 over loopback HTTP")
    print(f"{'setup':<16}{'clients':>8}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}")
    for name, clients, rate, p50, p95 in rows:
        print(f"{name:<16}{clients:>8}{rate:>10.1f}{p50:>9.1f}{p95:>9.1f}")
    print("\n(b) against (a) at the same load, from this run:")
    for clients in LOADS:
        (_, _, ra, pa, qa), (_, _, rb, pb, qb) = [r for r in rows if r[1] == clients]
        print(f"  {clients:>2} clients: calls/s x{rb / ra:.2f}, p50 x{pb / pa:.2f}, p95 x{qb / qa:.2f}")
    print(f"\nmedian p50 over loads: one server {statistics.median(r[3] for r in rows[::2]):.1f} ms, "
          f"2 fronts + Ray {statistics.median(r[3] for r in rows[1::2]):.1f} ms")


if __name__ == "__main__":
    main()
