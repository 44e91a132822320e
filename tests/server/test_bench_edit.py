"""`lego-edit-mcp bench-edit` on tiny synthetic datasets in the published layouts: GEdit-Bench's
Arrow files (with a Chinese row to skip) and ImgEdit's singleturn.json, judged by a fake
OpenAI-compatible VLM; per-category table, a JSON of all samples, and resuming."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.cli import main
from tests.bricks.gpu.tiny_editors import small_qwen_references, tiny_editors  # noqa: F401 - fixture
from tests.builder.test_openai import completion, serve  # noqa: F401 - fixture
from tests.conftest import photo

GEDIT = [  # key, task_type, instruction, language
    ("a1", "tone_transfer", "make it warmer", "en"),
    ("a2", "tone_transfer", "make the photo brighter", "en"),
    ("b1", "color_alter", "turn the photo black and white", "en"),
    ("b2", "color_alter", "把照片变成黑白", "cn"),
    ("c1", "subject-add", "add a dragon in the sky", "en"),
]


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_gedit(root: Path) -> Path:
    """The dataset as `datasets` saves it: Arrow IPC stream files, images as {bytes, path} structs."""
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pictures = [photo(name)[::8, ::8] for name in ("chelsea", "coffee", "astronaut", "rocket", "chelsea")]
    table = pa.table({
        "key": [k for k, *_ in GEDIT], "task_type": [t for _, t, *_ in GEDIT], "instruction": [i for *_, i, _ in GEDIT],
        "instruction_language": [lang for *_, lang in GEDIT],
        "input_image": pa.array([{"bytes": png(p), "path": None} for p in pictures], image),
        "input_image_raw": pa.array([{"bytes": png(p), "path": None} for p in pictures], image),
        "Intersection_exist": [True] * len(GEDIT),
    })  # fmt: skip
    (root / "data").mkdir(parents=True)
    with pa.OSFile(str(root / "data" / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return root


def write_imgedit(root: Path) -> Path:
    (root / "animal").mkdir(parents=True)
    entries = {}
    for n, (kind, prompt) in enumerate([("add", "add a hat to the cat"), ("action", "make the cat jump"), ("add", "add a ball")]):
        Image.fromarray(photo("chelsea")[::6, ::6]).save(root / "animal" / f"{n}.jpg")
        entries[str(n)] = {"id": f"animal/{n}.jpg", "prompt": prompt, "edit_type": kind}
    (root / "singleturn.json").write_text(json.dumps(entries))
    return root


@pytest.fixture
def judge(serve):  # noqa: F811
    """A fake VLM judge: scores 4, 6, 8, ... in the order asked; counts what it judged."""
    asked = []

    def reply(path, body):
        if body is None:
            return 200, {"data": [{"id": "judge-vlm"}]}
        asked.append(body["messages"][0]["content"][2]["text"])
        score = min(10, 2 + 2 * len(asked))
        return completion(json.dumps({"editing_success": score, "over_editing": 10, "naturalness": score, "artifacts": 10,
                                      "critique": f"verdict {len(asked)}"}))  # fmt: skip

    endpoint = serve(reply)
    endpoint.asked = asked
    return endpoint


def test_gedit_runs_lego_edit_judges_tabulates_and_resumes(judge, tmp_path, capsys):
    data, out = write_gedit(tmp_path / "gedit"), tmp_path / "out"
    flags = ["--builder", "rules", "--backend", "cpu", "--judge-url", judge.url, "--cache-dir", str(tmp_path / "cache"),
             "--allowed-roots", str(tmp_path), "--out", str(out)]  # fmt: skip
    assert main(["bench-edit", str(data), *flags, "--limit", "2"]) == 0
    assert len((out / "samples.jsonl").read_text().splitlines()) == 2 and len(judge.asked) == 2
    with (out / "samples.jsonl").open("a") as journal:
        journal.write('{"key": "b1", "categ')  # an interruption in the middle of a line
    capsys.readouterr()

    assert main(["bench-edit", str(data), *flags]) == 0
    captured = capsys.readouterr()
    assert "resuming: 2 of 4 samples already done" in captured.err
    assert "[3/4] color_alter b1" in captured.err and "[4/4] subject-add c1: failed" in captured.err
    assert len(judge.asked) == 3  # only b1 was judged again; c1 had no plan offline
    results = json.loads((out / "results.json").read_text())
    assert [s["key"] for s in results["samples"]] == ["a1", "a2", "b1", "c1"]  # the Chinese row is skipped
    tone = results["categories"]["tone_transfer"]
    assert tone == {"samples": 2, "failed": 0, "semantic_consistency": 5.0, "perceptual_quality": 5.0, "overall": 5.0}
    assert results["categories"]["subject-add"]["failed"] == 1 and results["categories"]["subject-add"]["overall"] == 0
    assert results["all"]["overall"] == pytest.approx((5.0 + 8.0 + 0.0) / 3, abs=1e-3)  # the mean of the categories
    table = (out / "table.md").read_text()
    assert table == captured.out and "| tone_transfer | 2 | 0 | 5.00 | 5.00 | 5.00 |" in table
    edited = np.asarray(Image.open(out / "images" / "b1.png"))
    assert edited.shape == photo("astronaut")[::8, ::8].shape and np.allclose(edited[..., 0], edited[..., 1], atol=2)  # grey


def test_imgedit_with_one_brick_on_the_tiny_editor(judge, tiny_editors, tmp_path, capsys, monkeypatch):  # noqa: F811
    small_qwen_references(monkeypatch)
    data, out = write_imgedit(tmp_path / "ImgEdit" / "Benchmark" / "singleturn"), tmp_path / "out"
    models = tiny_editors.toml(tmp_path / "models.toml")
    assert main(["bench-edit", str(data), "--brick", "flux2_klein_edit", "--models-file", str(models), "--judge-url", judge.url,
                 "--cache-dir", str(tmp_path / "cache"), "--allowed-roots", str(tmp_path), "--out", str(out),
                 "--categories", "add"]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert list(results["categories"]) == ["add"] and results["categories"]["add"]["samples"] == 2
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0.png", "2.png"]  # named as ImgEdit's own scorer reads them
    assert "add a hat to the cat" in judge.asked[0]


def test_bad_runs_are_one_line_errors(tmp_path, capsys, judge):
    assert main(["bench-edit", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"), "--judge-url", judge.url]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["bench-edit", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--judge-url", judge.url]) == 2
    assert "neither ImgEdit's singleturn.json nor GEdit-Bench's" in capsys.readouterr().err
    data = write_imgedit(tmp_path / "imgedit")
    assert main(["bench-edit", str(data), "--out", str(tmp_path / "o"), "--backend", "cpu", "--judge", "off"]) == 2
    assert "bench-edit needs a judge" in capsys.readouterr().err
    assert main(["bench-edit", str(data), "--out", str(tmp_path / "o"), "--judge-url", judge.url, "--categories", "nope"]) == 2
    assert "no samples of ['nope']" in capsys.readouterr().err
