"""`lego-edit-mcp bench-edit`: GEdit-Bench-EN or ImgEdit from a local copy, edited and judged.

Datasets, in their published layouts (never downloaded here):
- GEdit-Bench (stepfun-ai/GEdit-Bench): a directory of `.arrow` (Arrow IPC stream, as `datasets`
  writes) or `.parquet` files with the columns key, task_type, instruction,
  instruction_language and input_image ({bytes, path}); only the English rows are run.
- ImgEdit (sysuyy/ImgEdit, Benchmark/singleturn): `singleturn.json` mapping each key to
  {id: the image's path under that directory, prompt, edit_type}.

Each sample is edited (by `lego_edit`'s editor, or one brick given the image and the
instruction as `prompt`), its result saved as `<out>/images/<key>.png` (the layout the
benchmarks' own scorers read), judged, and appended to `<out>/samples.jsonl`; a re-run skips
the keys already there. At the end `<out>/results.json` holds every sample and the
per-category means, and `<out>/table.md` the table. Reading Arrow or Parquet needs pyarrow
(`pip install 'lego-edit-mcp[bench]'`).
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from bricks import InvalidInput, LegoEditError
from builder.editor import EditFailed
from builder.judges.base import JudgeRequest, JudgeUnavailable

if TYPE_CHECKING:
    from .runtime import Runtime

FORMATS = ("gedit", "imgedit")


@dataclass(frozen=True)
class Sample:
    key: str
    category: str
    instruction: str
    load: Callable[[], np.ndarray]


def detect(root: Path) -> str:
    """Which benchmark the directory holds, from its files."""
    if (root / "singleturn.json").is_file():
        return "imgedit"
    if any(root.rglob("*.arrow")) or any(root.rglob("*.parquet")):
        return "gedit"
    raise InvalidInput(f"{root} holds neither ImgEdit's singleturn.json nor GEdit-Bench's .arrow/.parquet files", param="dataset")


def samples(root: Path, kind: str) -> list[Sample]:
    return list(_imgedit(root) if kind == "imgedit" else _gedit(root))


def _imgedit(root: Path) -> Iterator[Sample]:
    entries = json.loads((root / "singleturn.json").read_text(encoding="utf-8"))
    for key, entry in entries.items():
        path = root / entry["id"]
        yield Sample(str(key), entry["edit_type"], entry["prompt"], lambda path=path: _rgb(Image.open(path)))


def _gedit(root: Path) -> Iterator[Sample]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("GEdit-Bench's Arrow files need pyarrow: pip install 'lego-edit-mcp[bench]'", param="dataset") from None
    for path in sorted([*root.rglob("*.arrow"), *root.rglob("*.parquet")]):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_stream(source).read_all()
        for row in table.to_pylist():
            if row.get("instruction_language", "en") != "en":
                continue
            image = row["input_image"]
            yield Sample(str(row["key"]), row["task_type"], row["instruction"],
                         lambda image=image, base=path.parent: _rgb(Image.open(_image_source(image, base))))  # fmt: skip


def _image_source(value: Any, base: Path) -> Any:
    """A `datasets` image cell: {bytes, path}, inline bytes first."""
    if isinstance(value, dict) and value.get("bytes"):
        return io.BytesIO(value["bytes"])
    if isinstance(value, dict) and value.get("path"):
        return base / value["path"]
    raise InvalidInput(f"an input_image cell holds neither bytes nor a path: {str(value)[:80]}", param="dataset")


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


class Bench:
    """One benchmark run into `out`, resumable."""

    def __init__(self, runtime: Runtime, out: Path, *, brick: str | None = None, log: Callable[[str], None] = print):
        self.runtime = runtime
        self.out = out
        self.brick = brick
        self.log = log
        judge, why_not = runtime.judge()
        if judge is None:
            raise JudgeUnavailable(f"bench-edit needs a judge: {why_not}")
        self.judge = judge
        if brick is not None:
            spec = runtime.registry.get(brick).spec
            if spec.input("image") is None or spec.input("prompt") is None:
                raise InvalidInput(f"'{brick}' takes no image and prompt; bench-edit gives a brick those two", param="brick")

    def done(self) -> dict[str, dict[str, Any]]:
        path = self.out / "samples.jsonl"
        if not path.exists():
            return {}
        records = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interruption: that sample runs again
                continue
            records[record["key"]] = record
        return records

    async def run(self, todo: list[Sample]) -> dict[str, Any]:
        (self.out / "images").mkdir(parents=True, exist_ok=True)
        records = self.done()
        left = [s for s in todo if s.key not in records]
        if len(left) < len(todo):
            self.log(f"resuming: {len(todo) - len(left)} of {len(todo)} samples already done")
        with (self.out / "samples.jsonl").open("a", encoding="utf-8") as journal:
            for n, sample in enumerate(left, 1):
                record = await self.one(sample)
                journal.write(json.dumps(record) + "\n")
                journal.flush()
                records[sample.key] = record
                score = f"{record['overall']:.2f} (SC {record['semantic_consistency']}, PQ {record['perceptual_quality']})" \
                    if "overall" in record else f"failed: {record['error']}"  # fmt: skip
                self.log(f"[{len(todo) - len(left) + n}/{len(todo)}] {sample.category} {sample.key}: {score}, {record['seconds']:.1f} s")
        report = summary([records[s.key] for s in todo if s.key in records])
        (self.out / "results.json").write_text(json.dumps({**report, "samples": [records[s.key] for s in todo]}, indent=1), encoding="utf-8")
        (self.out / "table.md").write_text(table(report), encoding="utf-8")
        return report

    async def one(self, sample: Sample) -> dict[str, Any]:
        started = time.perf_counter()
        record: dict[str, Any] = {"key": sample.key, "category": sample.category, "instruction": sample.instruction}
        registry = self.runtime.registry
        try:
            source = sample.load()
            uri = registry.store.put(source).uri
            judged = None
            if self.brick is not None:
                out = await registry.call(self.brick, {"image": uri, "prompt": sample.instruction})
                edited = registry.store.get(out["image"].id)
            else:
                outcome = await self.runtime.editor().edit(uri, sample.instruction)
                first = next(r for r in outcome.execution.results if not r.is_mask)
                edited = registry.store.get(first.id)
                record["workflow"] = outcome.workflow.to_json()
                record["attempts"] = len(outcome.attempts)
                judged = outcome.attempts[outcome.chosen].verdict  # lego_edit's own judge (the same one) scored it
            Image.fromarray(edited).save(self.out / "images" / f"{_file_name(sample.key)}.png")
            record |= judged or (await self.judge.judge(JudgeRequest(source, edited, sample.instruction))).as_dict()
        except (LegoEditError, OSError, StopIteration) as exc:
            record["error"] = str(exc) if not isinstance(exc, StopIteration) else "the workflow returned no image"
            if isinstance(exc, EditFailed):
                record["attempts"] = len(exc.attempts)
        record["seconds"] = round(time.perf_counter() - started, 3)
        return record


def _file_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per category (a failed sample scores 0, as the benchmarks count a missing edit) and
    over the categories (each weighs the same, as GEdit-Bench reports)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by.setdefault(record["category"], []).append(record)
    categories = {}
    for name, group in sorted(by.items()):
        categories[name] = {
            "samples": len(group),
            "failed": sum("overall" not in r for r in group),
            **{k: round(float(np.mean([r.get(k, 0) for r in group])), 3) for k in ("semantic_consistency", "perceptual_quality", "overall")},
        }
    means = {k: round(float(np.mean([c[k] for c in categories.values()])), 3) if categories else math.nan
             for k in ("semantic_consistency", "perceptual_quality", "overall")}  # fmt: skip
    return {"categories": categories, "all": {"samples": len(records), "failed": sum(c["failed"] for c in categories.values()), **means}}


def table(report: dict[str, Any]) -> str:
    lines = ["| category | samples | failed | SC | PQ | overall |", "|---|---|---|---|---|---|"]
    for name, row in [*report["categories"].items(), ("**all** (mean of categories)", report["all"])]:
        lines.append(f"| {name} | {row['samples']} | {row['failed']} | {row['semantic_consistency']:.2f} | "
                     f"{row['perceptual_quality']:.2f} | {row['overall']:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(runtime: Runtime, dataset: Path, out: Path, *, kind: str | None = None, brick: str | None = None,
        limit: int | None = None, categories: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The whole command: read, filter, run (resuming), and print the table."""
    import anyio

    if not dataset.is_dir():
        raise InvalidInput(f"{dataset} is not a directory", param="dataset")
    kind = kind or detect(dataset)
    todo = samples(dataset, kind)
    if categories:
        unknown = set(categories) - {s.category for s in todo}
        if unknown:
            raise InvalidInput(f"no samples of {sorted(unknown)} (there are {sorted({s.category for s in todo})})", param="categories")
        todo = [s for s in todo if s.category in categories]
    todo = todo[:limit] if limit is not None else todo
    bench = Bench(runtime, out, brick=brick, log=lambda line: print(line, file=sys.stderr))
    report = anyio.run(bench.run, todo)
    print(table(report), end="")
    return report
