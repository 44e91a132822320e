"""Running workflows: dependency order, concurrency, progress, in-memory values, failures."""

import anyio
import numpy as np
import pytest

from builder.editor import run_workflow
from builder.executor import StepFailed
from builder.workflow import WorkflowInvalid
from tests.conftest import photo

pytestmark = pytest.mark.anyio

TWO_BRANCHES = {
    "pipeline": [
        {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "saturation": -1.0}, "output": {"image": "step1[image]"}},
        {"step": 2, "model": "BRIGHT", "input": {"image": "init[image]", "ratio": 0.25}, "output": {"image": "step2[image]"}},
        {"step": 3, "model": "COMPOSE", "input": {"image1": "step2[image]", "image2": "init[cutout]"}, "output": {"image": "step3[image]"}},
        {"result": "[step1[image], step3[image]]"},
    ]
}


async def test_runs_in_dependency_order_with_progress_and_no_png(registry):
    img = photo("chelsea")
    cutout = np.dstack([img, np.zeros(img.shape[:2], np.uint8)])
    cutout[100:200, 150:300, 3] = 255
    store = registry.store
    seen = []

    async def progress(done, total, message):
        seen.append((done, total, message))

    _, warnings, execution = await run_workflow(
        registry, TWO_BRANCHES, store.put(img).uri, extra={"cutout": store.put(cutout).uri}, on_progress=progress
    )
    grey, composed = (store.get(r.id) for r in execution.results)
    assert (grey.max(axis=2) - grey.min(axis=2) <= 1).all()
    np.testing.assert_array_equal(composed[100:200, 150:300], img[100:200, 150:300])
    assert composed[:100].mean() < img[:100].mean() * 0.6
    runs = {r.step: r for r in execution.steps}
    assert runs[3].start >= runs[2].start + runs[2].seconds  # step 3 waited for step 2 (step 1 may end last)
    assert seen[-1][:2] == (3, 3) and warnings == []
    assert not list(registry.settings.cache_dir.glob("*.png")), "values stayed in memory"


async def test_independent_steps_run_concurrently(registry):
    uri = registry.store.put(photo("chelsea")).uri
    two = {"pipeline": [
        {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]"}},
        {"step": 2, "model": "SOS", "input": {"image": "init[mask]"}, "output": {"mask": "step2[mask]"}},
        {"result": "[step1[mask], step2[mask]]"}]}
    _, _, execution = await run_workflow(registry, two, uri, mask=registry.store.put(photo("astronaut")[:300, :451]).uri)
    first, second = sorted(execution.steps, key=lambda r: r.start)
    assert second.start < first.start + first.seconds  # the second began before the first ended


async def test_invalid_workflow_runs_nothing(registry):
    bad = {"pipeline": [{"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "gamma": 9}, "output": {"image": "step1[image]"}}, {"result": "[step1[image]]"}]}
    with pytest.raises(WorkflowInvalid) as err:
        await run_workflow(registry, bad, registry.store.put(photo("chelsea")).uri)
    assert [(i.step, i.input) for i in err.value.issues] == [(1, "gamma")]


async def test_a_failing_step_is_named(registry):
    empty = registry.store.put(np.zeros((300, 451), np.uint8)).uri
    wf = {"pipeline": [
        {"step": 1, "model": "BBOX", "input": {"mask": "init[mask]"}, "output": {"mask": "step1[mask]"}},
        {"result": "[step1[mask]]"}]}
    with pytest.raises(StepFailed) as err:
        await run_workflow(registry, wf, registry.store.put(photo("chelsea")).uri, mask=empty)
    assert (err.value.step, err.value.brick, err.value.invalid) == (1, "mask_to_box", True)
    assert "mask is empty" in str(err.value)


async def test_cancelling_stops_the_running_step(registry):
    wf = {"pipeline": [
        {"step": 1, "model": "SOS", "input": {"image": "init[image]"}, "output": {"mask": "step1[mask]"}},
        {"step": 2, "model": "BBOX", "input": {"mask": "step1[mask]"}, "output": {"mask": "step2[mask]"}},
        {"result": "[step2[mask]]"}]}
    reports = []
    with anyio.CancelScope() as scope:
        async def progress(done, total, message):
            reports.append(message)
            scope.cancel()

        await run_workflow(registry, wf, registry.store.put(photo("chelsea")).uri, on_progress=progress)
    assert scope.cancelled_caught
    assert reports == ["step 1 segment_salient: salient-object network"]  # stopped at the next check


async def test_only_the_result_gets_a_content_id(registry):
    wf = {"pipeline": [
        {"step": 1, "model": "ADJUST", "input": {"image": "init[image]", "warmth": 0.3}, "output": {"image": "step1[image]"}},
        {"step": 2, "model": "ADJUST", "input": {"image": "step1[image]", "contrast": 0.2}, "output": {"image": "step2[image]"}},
        {"result": "[step2[image]]"}]}
    image = registry.store.put(photo("coffee")).uri
    (_, _, first), (_, _, second) = [await run_workflow(registry, wf, image) for _ in range(2)]
    (a,), (b,) = first.results, second.results
    assert a.id == b.id == registry.store.put(registry.store.get(a.id)).id  # the same pixels, the same id
    step1 = [r.outputs["image"].id for r in (*first.steps, *second.steps) if r.step == 1]
    assert step1[0] != step1[1]  # intermediates: cheap random ids, never hashed nor shared


def test_linear_runs_share_a_thread_and_branches_do_not(registry):
    """Chains: a step joins the one before it only when it alone reads that step and reads no other."""
    from builder.executor import _chains
    from builder.workflow import parse_workflow

    def numbers(pipeline: list[dict]) -> list[list[int]]:
        return [[s.number for s in chain] for chain in _chains(parse_workflow({"pipeline": pipeline}), registry)]

    def step(n, model, **inputs):
        return {"step": n, "model": model, "input": inputs, "output": {"image": f"step{n}[image]", "mask": f"step{n}[mask]"}}

    line = [step(1, "ADJUST", image="init[image]"), step(2, "BRIGHT", image="step1[image]", ratio=0.4),
            step(3, "FLUX-STYLE", image="step2[image]", prompt="p", style="sepia"), {"result": "[step3[image]]"}]
    assert numbers(line) == [[1, 2, 3]]
    assert numbers(TWO_BRANCHES["pipeline"]) == [[1], [2, 3]]
    fork = [step(1, "SOS", image="init[image]"), step(2, "BBOX", mask="step1[mask]"),
            step(3, "INVERSE", mask2="step1[mask]"), step(4, "COMPOSE", mask1="step2[mask]", mask2="step3[mask]"),
            {"result": "[step4[mask]]"}]
    assert numbers(fork) == [[1], [2], [3], [4]]  # step 1 has two readers; step 4 two sources


async def test_a_chain_runs_in_one_worker_thread(registry, monkeypatch):
    import threading

    threads = []
    call_here = registry.call_here

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return call_here(*args, **kwargs)

    monkeypatch.setattr(registry, "call_here", spy)
    wf = {"pipeline": [
        {"step": n, "model": "ADJUST", "input": {"image": "init[image]" if n == 1 else f"step{n - 1}[image]", "warmth": 0.1},
         "output": {"image": f"step{n}[image]"}} for n in (1, 2, 3)] + [{"result": "[step3[image]]"}]}
    _, _, execution = await run_workflow(registry, wf, registry.store.put(photo("coffee")).uri)
    assert len(threads) == 3 and len(set(threads)) == 1 and threads[0] != threading.get_ident()
    assert [r.step for r in execution.steps] == [1, 2, 3]


async def test_steps_hand_on_stored_values_not_uris_to_parse_again(registry, monkeypatch):
    from builder.executor import execute
    from builder.workflow import parse_workflow

    parsed = []
    parse_uri = registry.store.parse_uri
    monkeypatch.setattr(registry.store, "parse_uri", lambda uri: parsed.append(uri) or parse_uri(uri))
    wf = parse_workflow({"pipeline": [
        {"step": n, "model": "ADJUST", "input": {"image": "init[image]" if n == 1 else f"step{n - 1}[image]", "warmth": 0.1},
         "output": {"image": f"step{n}[image]"}} for n in (1, 2, 3)] + [{"result": "[step3[image]]"}]})
    uri = registry.store.put(photo("coffee")).uri
    execution = await execute(wf, registry, {"image": uri})
    assert parsed == [uri]  # only the initial image is looked up by its URI
    assert execution.results[0].id == registry.store.put(registry.store.get(execution.results[0].id)).id
