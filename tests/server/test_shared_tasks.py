"""Tasks in a store shared by two fronts: any front answers tasks/* for a task another started, a
cancel taken by one stops the work on the other, and a client's task id never names a file."""

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from PIL import Image

from server.app import LegoEditServer
from server.runtime import Runtime
from tests.bricks.gpu.tiny_editors import editors_settings, small_qwen_references, tiny_editors  # noqa: F401 - fixture
from tests.conftest import changed, photo
from tests.server.test_tasks import SLOW_STEPS, TasksClient, ask, poll, start_legacy, start_modern, transformer_calls

pytestmark = pytest.mark.anyio
pytest.importorskip("fsspec", reason="the shared task store needs fsspec: pip install -e '.[scale]'")


def front(settings, tmp_path, name: str):
    store = (tmp_path / "tasks").as_uri()
    return LegoEditServer(Runtime.from_settings(changed(settings, cache_dir=tmp_path / name, task_store=store)))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_any_front_answers_for_a_task_another_front_started(settings, photo_file, tmp_path, mode):
    a, b = (front(changed(settings, builder="rules"), tmp_path, n) for n in ("a", "b"))
    args = {"image": str(photo_file), "instruction": "make it warmer"}
    extensions = [TasksClient()] if mode == "auto" else []
    async with Client(a, mode=mode, extensions=extensions) as client:
        task_id = await (start_modern if mode == "auto" else start_legacy)(client, "lego_edit", args)
    async with Client(b, mode=mode, extensions=extensions) as client:
        final = (await poll(client, task_id))[-1]
        assert final["status"] == "completed"
        result = final["result"] if mode == "auto" else await ask(client, "tasks/result", taskId=task_id)
        assert result["structuredContent"]["workflow"]["pipeline"][0]["model"] == "ADJUST"
        if mode == "legacy":
            assert task_id in [t["taskId"] for t in (await ask(client, "tasks/list"))["tasks"]]
        for bad in ("../tasks/x", "a/b", "x" * 100):
            with pytest.raises(MCPError) as err:
                await ask(client, "tasks/get", taskId=bad)
            assert err.value.error.code == INVALID_PARAMS and "Task not found" in err.value.error.message


async def test_a_cancel_taken_by_one_front_stops_the_work_on_the_other(tiny_editors, tmp_path, monkeypatch):  # noqa: F811
    small_qwen_references(monkeypatch)
    settings = editors_settings(tiny_editors, tmp_path, builder="rules")
    models = settings.bricks.models_file
    models.write_text(models.read_text().replace("steps = 2", f"steps = {SLOW_STEPS}"))
    working, other = front(settings, tmp_path, "a"), front(settings, tmp_path, "b")
    calls = transformer_calls(working)
    Image.fromarray(photo("chelsea")[::8, ::8]).save(tmp_path / "cat.png")
    args = {"image": str(tmp_path / "cat.png"), "prompt": "add a hat"}
    async with Client(working, extensions=[TasksClient()]) as client:
        task_id = await start_modern(client, "qwen_image_edit", args)
        await poll(client, task_id, until=lambda t: "denoising step" in t.get("statusMessage", ""))
    async with Client(other, extensions=[TasksClient()]) as client:
        await ask(client, "tasks/cancel", taskId=task_id)
        final = (await poll(client, task_id, timeout=15))[-1]
    assert final["status"] == "cancelled"
    stopped = len(calls)
    await anyio.sleep(0.5)
    assert len(calls) == stopped < SLOW_STEPS  # the work on the first front stopped
