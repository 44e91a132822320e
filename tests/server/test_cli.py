"""The `lego-edit-mcp` command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from server.cli import main
from tests.conftest import photo

PAPER_IDS = {"INVERSE", "BBOX", "COMPOSE", "RESIZE", "BRIGHT", "FASTINPAINT", "SOS", "MASK-SEG", "CMI-PRED", "FLUX-RCM", "FLUX-STYLE", "FLUX-CBG"}


def test_tools_json_lists_every_cpu_brick_with_its_paper_id(capsys, settings):
    assert main(["tools", "--json", "--cache-dir", str(settings.cache_dir)]) == 0
    rows = json.loads(capsys.readouterr().out)
    ids = {r["builder_id"] for r in rows}
    assert PAPER_IDS | {"ADJUST"} <= ids
    for row in rows:
        assert {"name", "builder_id", "kind", "available", "backends"} <= set(row)
        if "cpu" in row["backends"]:
            assert row["available"], row
        else:  # GPU-only bricks: listed, unavailable here, with the reason
            assert not row["available"] and row["reason"].startswith("gpu: "), row


def test_tools_registered_earlier_are_listed_and_callable(capsys, settings, monkeypatch):
    definition = json.loads((Path(__file__).parents[2] / "examples" / "composite" / "color_pop.json").read_text())
    saved = settings.state_dir / "tools"
    saved.mkdir(parents=True)
    (saved / "color_pop.json").write_text(json.dumps(definition))
    (saved / "broken.json").write_text(json.dumps({**definition, "name": "broken", "builder_id": "BROKEN", "inputs": []}))
    common = ["--cache-dir", str(settings.cache_dir), "--state-dir", str(settings.state_dir)]
    assert main(["tools", "--json", *common]) == 0
    out, err = capsys.readouterr()
    row = next(r for r in json.loads(out) if r["name"] == "color_pop")
    assert row["available"] and row["backend"] == "composite" and "register_tool" in row["source"]
    assert "not loaded:" in err and "broken.json" in err and "init[image] was not given" in err
    monkeypatch.chdir(settings.allowed_roots[0])
    Image.fromarray(photo("coffee")).save("coffee.png")
    assert main(["call", "COLOR-POP", "image=coffee.png", "saturation=-1", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"image", "subject"}


def test_call_runs_a_brick_and_saves_the_output(capsys, settings, monkeypatch):
    root = settings.allowed_roots[0]
    monkeypatch.chdir(root)
    Image.fromarray(photo("coffee")).save("coffee.png")
    code = main(["call", "brightness", "image=coffee.png", "ratio=0.2", "-o", "out/dark.jpg", "--cache-dir", str(settings.cache_dir)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image"]["path"] == "out/dark.jpg"
    dark = np.asarray(Image.open(root / "out" / "dark.jpg"))
    assert dark.shape == photo("coffee").shape and dark.mean() < photo("coffee").mean() * 0.6


def test_call_errors_are_one_line_with_exit_code_2(capsys, settings, monkeypatch):
    monkeypatch.chdir(settings.allowed_roots[0])
    assert main(["call", "brightness", "image=missing.png", "ratio=0.4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lego-edit-mcp: tool 'brightness', parameter `image`: no such file") and err.count("\n") == 1
    assert main(["call", "brightness", "ratio=abc"]) == 2
    assert "parameter `ratio`: 'abc' is not a valid Float" in capsys.readouterr().err


def test_a_bad_schema_dir_stops_start_up_with_path_and_reason(tmp_path):
    (tmp_path / "oops.json").write_text('{"name": "oops"}')
    out = subprocess.run([sys.executable, "-m", "server", "tools", "--schemas", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert str(tmp_path / "oops.json") in out.stderr and "builder_id: Field required" in out.stderr
    assert "Traceback" not in out.stderr


def test_readme_lists_every_built_in_tool(registry):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for brick in registry.all():
        assert f"| `{brick.name}` | {brick.spec.builder_id} |" in readme


def test_tools_name_and_call_help_show_a_tools_inputs(capsys, settings):
    common = ["--cache-dir", str(settings.cache_dir)]
    assert main(["tools", "adjust", *common]) == 0
    card = capsys.readouterr().out
    assert "gamma (Float; optional, default 1.0; 0.2 to 5.0)" in card and "runs here: cpu" in card
    assert main(["call", "ADJUST", "--help", *common]) == 0
    assert capsys.readouterr().out == card
    assert main(["tools", "recolor_material", *common]) == 0
    assert "use: Segment the object first. Colour only" in capsys.readouterr().out  # the note of the backend here
    assert main(["tools", "stylize", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "stylize"


def test_edit_prints_one_line_unless_asked_for_json(capsys, settings, monkeypatch):
    monkeypatch.chdir(settings.allowed_roots[0])
    Image.fromarray(photo("chelsea")).save("cat.png")
    common = ["--cache-dir", str(settings.cache_dir)]
    assert main(["edit", "cat.png", "make it warmer", "-o", "warm.png", *common]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("warm.png (451x300): 1 step in ") and "warmth +0.30" in line and "\n" not in line
    assert main(["edit", "cat.png", "make it warmer", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["workflow"]["pipeline"][0]["model"] == "ADJUST"


def test_a_mask_of_another_size_is_refused_with_what_to_do(capsys, settings, monkeypatch):
    monkeypatch.chdir(settings.allowed_roots[0])
    Image.fromarray(photo("chelsea")).save("cat.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save("small.png")
    assert main(["call", "adjust", "image=cat.png", "mask=small.png", "brightness=0.1", "--cache-dir", str(settings.cache_dir)]) == 2
    err = capsys.readouterr().err
    assert "parameter `mask`: is 10x10 but `image` is 451x300; they must match" in err and "segmentation tool" in err
