"""Check a workflow against the registry before anything runs.

Errors (raised together as `WorkflowInvalid`): unknown or unavailable brick, unknown input or
output key, required input missing, reference to a missing, later or undeclared output or to
an initial input that was not given, type mismatch, bad literal, duplicate step numbers,
cycles, empty or non-image result. Warnings: outputs nobody uses.

Type coercions allowed, both done by the registry at run time: a Mask may feed an Image input
(as a grey image) and an Int may feed a Float. Everything else must match exactly; a string
literal in an Image or Mask input is taken as an image reference (URI, path or data URI).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Mapping

from bricks import Registry, UnknownTool
from bricks.spec import IMAGE_TYPES, BrickSpec, Param
from bricks.types import TYPES, compatible

from .workflow import Issue, Ref, Step, Workflow, WorkflowInvalid

__all__ = ["compatible", "validate_workflow"]


def validate_workflow(
    workflow: Workflow, registry: Registry, inits: Mapping[str, str], *, check_available: bool = True,
    optional: Collection[str] = (),
) -> list[Issue]:
    """Return the warnings, or raise `WorkflowInvalid` listing every error.

    `inits` maps each name usable as `init[<name>]` to its type ("Image" or "Mask").
    `check_available=False` checks against the whole catalogue, runnable here or not.
    `optional`: inits that may be absent when it runs (a composite's optional inputs); a step's
    input sets must fit for some of them given or not.
    """
    issues: list[Issue] = []
    counts = Counter(s.number for s in workflow.steps)
    for n in sorted(n for n, count in counts.items() if count > 1):
        issues.append(Issue(f"step number {n} is used {counts[n]} times", step=n))
    specs: dict[int, BrickSpec] = {}
    for step in workflow.steps:
        spec = _brick(step, registry, issues, check_available)
        if spec is not None:
            specs.setdefault(step.number, spec)
    cyclic = _cyclic_steps(workflow.steps)
    nulls = _unproduced(workflow.steps, specs)
    for step in workflow.steps:
        if step.number in specs:
            _check_step(step, specs, inits, cyclic, issues, nulls, optional)
    for ref in workflow.result:
        kind = _ref_type(ref, None, specs, inits, cyclic, issues, Issue("", None, "result"), nulls)
        if kind is not None and kind not in IMAGE_TYPES:
            issues.append(Issue(f"{ref} is of type {kind}; the result lists images or masks only", input="result"))
    if not workflow.result:
        issues.append(Issue("the result is empty", input="result"))
    warnings = _unused_outputs(workflow, specs)
    if issues:
        raise WorkflowInvalid(issues, warnings)
    return warnings


def _brick(step: Step, registry: Registry, issues: list[Issue], check_available: bool) -> BrickSpec | None:
    try:
        brick = registry.get(step.brick)
    except UnknownTool as exc:
        issues.append(Issue(exc.reason.replace("unknown tool", "unknown brick"), step=step.number))
        return None
    backend, why = registry.backend_for(brick)
    if check_available and backend is None:
        issues.append(Issue(f"brick {brick.spec.builder_id} is not available here ({why})", step=step.number))
        return None
    return brick.spec


def _check_step(
    step: Step, specs: dict[int, BrickSpec], inits: Mapping[str, str], cyclic: set[int], issues: list[Issue],
    nulls: Mapping[tuple[int, str], str], optional: Collection[str],
) -> None:
    spec = specs[step.number]
    declared = ", ".join(p.name for p in spec.inputs)
    for key in step.inputs:
        if spec.input(key) is None:
            issues.append(Issue(f"{spec.builder_id} has no input '{key}' (its inputs: {declared})", step.number, key))
    for param in spec.inputs:
        value = step.inputs.get(param.name)
        if value is None:
            if param.required:
                issues.append(Issue(f"required input of {spec.builder_id} is missing", step.number, param.name))
        elif isinstance(value, Ref):
            where = Issue("", step.number, param.name)
            kind = _ref_type(value, step.number, specs, inits, cyclic, issues, where, nulls)
            if kind is not None and not compatible(kind, param.type):
                issues.append(Issue(f"{value} is of type {kind} but {spec.builder_id} needs {param.type} here", step.number, param.name))
        else:
            reason = _literal_problem(param, value)
            if reason:
                issues.append(Issue(reason, step.number, param.name))
    given = {k for k, v in step.inputs.items() if v is not None}
    maybe = sorted(k for k, v in step.inputs.items() if isinstance(v, Ref) and v.step is None and v.key in optional)
    ways = (given.difference(drop) for n in range(len(maybe) + 1) for drop in itertools.combinations(maybe, n))
    if (problem := spec.input_set_problem(given)) and all(spec.input_set_problem(way) for way in ways):
        issues.append(Issue(f"{spec.builder_id}: {problem[1]}", step.number, problem[0]))
    outputs = {o.name for o in spec.outputs}
    for key in step.outputs:
        if key not in outputs:
            issues.append(Issue(f"{spec.builder_id} has no output '{key}' (its outputs: {', '.join(sorted(outputs))})", step.number, key))


def _ref_type(
    ref: Ref, citing: int | None, specs: dict[int, BrickSpec], inits: Mapping[str, str], cyclic: set[int],
    issues: list[Issue], where: Issue, nulls: Mapping[tuple[int, str], str],
) -> str | None:
    """The type `ref` points to, or None after recording why it points nowhere."""
    def fail(reason: str) -> None:
        issues.append(Issue(reason, where.step, where.input))

    if ref.step is None:
        if ref.key not in inits:
            given = ", ".join(f"init[{k}]" for k in inits)
            hint = " (the user gave no mask)" if ref.key == "mask" else ""
            fail(f"{ref} was not given{hint}; available: {given}")
            return None
        return inits[ref.key]
    spec = specs.get(ref.step)
    if spec is None:
        fail(f"{ref} refers to step {ref.step}, which does not exist or is invalid")
        return None
    if citing is not None and ref.step >= citing:
        fail(f"{ref} forms a cycle" if citing in cyclic else f"{ref} refers to step {ref.step}, which does not come before step {citing}")
        return None
    output = next((o for o in spec.outputs if o.name == ref.key), None)
    if output is None:
        fail(f"{ref}: step {ref.step} ({spec.builder_id}) has no output '{ref.key}'")
        return None
    if (ref.step, ref.key) in nulls:
        fail(f"{ref}: step {ref.step} {nulls[(ref.step, ref.key)]}")
        return None
    return output.type


def _unproduced(steps: tuple[Step, ...], specs: dict[int, BrickSpec]) -> dict[tuple[int, str], str]:
    """Step outputs that will not exist, with why: written as null, or their input not given."""
    missing = {}
    for step in steps:
        for key, value in step.outputs.items():
            if value is None:
                missing[(step.number, key)] = "writes this output as null (not produced)"
        spec = specs.get(step.number)
        for out in spec.outputs if spec else ():
            if out.when_given and step.inputs.get(out.when_given) is None:
                missing[(step.number, out.name)] = f"produces `{out.name}` only when `{out.when_given}` is given"
    return missing


def _literal_problem(param: Param, value: object) -> str | None:
    kind = TYPES[param.type]
    if not kind.accepts(value):
        return f"expected {kind.expects}, got {value!r}"
    if param.enum is not None and value not in param.enum:
        return f"must be one of {', '.join(param.enum)}, got {value!r}"
    if param.minimum is not None and value < param.minimum:
        return f"must be >= {param.minimum}, got {value}"
    if param.maximum is not None and value > param.maximum:
        return f"must be <= {param.maximum}, got {value}"
    return None


def _cyclic_steps(steps: tuple[Step, ...]) -> set[int]:
    """Step numbers that take part in a reference cycle: the strongly connected components of
    more than one step, or a step citing itself (Tarjan's algorithm, iterative: linear time)."""
    graph = {s.number: [v.step for v in s.inputs.values() if isinstance(v, Ref) and v.step is not None] for s in steps}
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    cyclic: set[int] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        cyclic.update(component)
    return cyclic


def _unused_outputs(workflow: Workflow, specs: dict[int, BrickSpec]) -> list[Issue]:
    used = {(v.step, v.key) for s in workflow.steps for v in s.inputs.values() if isinstance(v, Ref)}
    used |= {(r.step, r.key) for r in workflow.result}
    warnings = []
    for step in workflow.steps:
        for key, ref in step.outputs.items():
            if ref is not None and (step.number, key) not in used and step.number in specs:
                warnings.append(Issue(f"output {ref} is never used", step.number, key))
    return warnings
