"""Schema directories and plugin entry points, synced into a live registry."""

import json
import shutil
import sys
from pathlib import Path

import anyio
import pytest

from bricks import Registry, SchemaError
from bricks.sources import EntryPoints, SchemaDir
from tests.conftest import photo

VIGNETTE = Path(__file__).parents[2] / "examples" / "schemas"


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    shutil.copytree(VIGNETTE, tmp_path / "plugins")
    return tmp_path / "plugins"


def edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_files_added_changed_broken_and_removed(registry: Registry, plugins: Path) -> None:
    source = SchemaDir(plugins)
    changes = source.sync(registry)
    assert changes.added == ["vignette"] and not changes.problems
    assert not source.sync(registry)  # nothing changed on disk: nothing happens

    edit_json(plugins / "vignette.json", description="Darker corners.")
    assert source.sync(registry).changed == ["vignette"]
    assert registry.get("VIGNETTE").spec.description == "Darker corners."

    (plugins / "broken.json").write_text('{"name": "broken"}')
    taken = json.loads((plugins / "vignette.json").read_text()) | {"name": "adjust", "builder_id": "ADJUST-TWO"}
    (plugins / "adjust.json").write_text(json.dumps(taken))
    changes = source.sync(registry)
    assert not changes  # the good brick stays, unchanged; the bad files are only reported
    assert "builder_id: Field required" in changes.problems[str(plugins / "broken.json")]
    assert "'adjust' is already taken by tool 'adjust'" in changes.problems[str(plugins / "adjust.json")]
    assert "vignette" in registry and registry.get("adjust").source.endswith("schemas/adjust.json")

    (plugins / "vignette.json").unlink()
    assert source.sync(registry).removed == ["vignette"]
    assert "vignette" not in registry


def test_a_bad_file_stops_start_up(registry: Registry, plugins: Path) -> None:
    (plugins / "broken.json").write_text("[]")
    with pytest.raises(SchemaError, match="broken.json"):
        SchemaDir(plugins).sync(registry, strict=True)
    with pytest.raises(SchemaError, match="schema directory does not exist"):
        SchemaDir(plugins / "nowhere").sync(registry, strict=True)


def test_code_beside_the_schema_is_loaded_from_its_file_and_reloaded_when_edited(registry: Registry, plugins: Path) -> None:
    source = SchemaDir(plugins)
    source.sync(registry)
    image = registry.store.put(photo("coffee")).uri
    first = anyio.run(registry.call, "vignette", {"image": image})["image"]
    assert "vignette" not in sys.modules  # loaded from the file, not importable by name
    code = (plugins / "vignette.py").read_text().replace("strength * np.clip", "0 * np.clip")
    (plugins / "vignette.py").write_text(code)
    assert source.sync(registry).changed == ["vignette"]
    second = anyio.run(registry.call, "vignette", {"image": image})["image"]
    assert second.id != first.id and registry.store.get(second.id).tobytes() == photo("coffee").tobytes()


def fake_distribution(site: Path, name: str, entry: str) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lego_edit.bricks]\n{name} = {entry}\n")


def test_a_broken_plugin_is_reported_and_never_fatal(registry: Registry, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    fake_distribution(tmp_path / "site", "ghost", "no_such_module_here")
    changes = EntryPoints().sync(registry, strict=True)
    problem = changes.problems["entry point ghost = no_such_module_here"]
    assert "ModuleNotFoundError" in problem and not changes.added


def test_an_idle_rescan_reads_no_dist_info_until_a_package_is_installed(registry: Registry, tmp_path: Path, monkeypatch) -> None:
    import importlib.metadata

    calls = []
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: calls.append(kw) or real(**kw))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    source = EntryPoints()
    source.sync(registry)
    for _ in range(5):  # the watcher's idle seconds
        source.sync(registry)
    assert len(calls) == 1
    fake_distribution(tmp_path / "site", "ghost", "no_such_module_here")  # "pip install" into a path
    assert "entry point ghost = no_such_module_here" in source.sync(registry).problems
    assert len(calls) == 2
