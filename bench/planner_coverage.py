"""How well the offline rules planner understands what people type: python bench/planner_coverage.py

Reads tests/builder/data/rules_instructions.json (paraphrases, typos, masks, several clauses)
and prints the share of in-scope instructions planned with an acceptable brick set and the
share of out-of-scope ones refused; `-v` lists the misses. The test suite holds the same bar.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "builder" / "data" / "rules_instructions.json"


@dataclass
class Coverage:
    planned: int = 0
    in_scope: int = 0
    refused: int = 0
    out_of_scope: int = 0
    misses: list[str] = field(default_factory=list)
    seconds: float = 0.0


def evaluate(registry) -> Coverage:
    from builder.planners.base import PlanRequest
    from builder.planners.rules import PlanRefused, RulesPlanner
    from builder.validate import validate_workflow
    from builder.workflow import parse_workflow

    data = json.loads(DATA.read_text())
    available = registry.available()
    bricks = tuple(b.spec for b in available)
    backends = {b.spec.builder_id: registry.backend_for(b)[0] for b in available}
    planner, image, out = RulesPlanner(registry.weights), np.zeros((64, 64, 3), np.uint8), Coverage()

    def bricks_of(entry) -> set[str] | None:
        inits = {"image": "Image", **({"mask": "Mask"} if entry["mask"] else {})}
        text = ("The user gave a mask. " if entry["mask"] else "") + entry["instruction"]
        try:
            plan = anyio.run(planner.plan, PlanRequest("", text, image, bricks, inits, backends=backends))
        except PlanRefused:
            return None
        workflow = parse_workflow(plan.workflow)
        validate_workflow(workflow, registry, inits)
        return {s.brick for s in workflow.steps}

    start = time.perf_counter()
    for entry in data["in_scope"]:
        got = bricks_of(entry)
        out.in_scope += 1
        if got is not None and any(got == set(a) for a in entry["accept"]):
            out.planned += 1
        else:
            out.misses.append(f"in scope, got {sorted(got) if got else 'a refusal'}: {entry['instruction']!r} (mask={entry['mask']})")
    for entry in data["out_of_scope"]:
        got = bricks_of(entry)
        out.out_of_scope += 1
        if got is None:
            out.refused += 1
        else:
            out.misses.append(f"out of scope, planned {sorted(got)}: {entry['instruction']!r} (mask={entry['mask']})")
    out.seconds = time.perf_counter() - start
    return out


def main() -> None:
    from bricks import Registry
    from server.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry.from_settings(Settings(cache_dir=Path(tmp), state_dir=Path(tmp), backend="cpu"))
        c = evaluate(registry)
    print(f"in scope planned acceptably: {c.planned}/{c.in_scope} = {c.planned / c.in_scope:.1%}")
    print(f"out of scope refused:        {c.refused}/{c.out_of_scope} = {c.refused / c.out_of_scope:.1%}")
    print(f"{(c.in_scope + c.out_of_scope) / c.seconds:.0f} instructions/s (first use of the embedder included)")
    if "-v" in sys.argv:
        print("\n".join(c.misses))


if __name__ == "__main__":
    main()
