"""The one settings object: names, sources and their order, errors, secrets, and the README's table."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.cli import main
from server.settings import SECTION_OF, Settings, SettingsError, env_name, field_of, flag_name, markdown_table

ROOT = Path(__file__).parents[2]


def test_flags_beat_the_environment_which_beats_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("LEGO_EDIT_MAX_PIXELS", "1_000_000")
    monkeypatch.setenv("LEGO_EDIT_THUMBNAIL_BYTES", "5000")
    monkeypatch.setenv("LEGO_EDIT_ALLOWED_ROOTS", f"{tmp_path / 'a'}:~/b")
    monkeypatch.setenv("LEGO_EDIT_REMOTE_SERVERS", "one=http://127.0.0.1:9/mcp; two=python -m x")
    monkeypatch.setenv("LEGO_EDIT_MODEL_FLUX_FILL", "/models/fill")
    s = Settings.load(max_pixels="2000", max_replans=None)
    assert (s.store.max_pixels, s.results.thumbnail_bytes, s.planning.max_replans) == (2000, 5000, 2)
    assert s.store.allowed_roots == (tmp_path / "a", Path.home() / "b")
    assert s.remote.remote_servers == ("one=http://127.0.0.1:9/mcp", "two=python -m x")
    assert s.bricks.model == {"flux_fill": "/models/fill"}
    assert s.max_pixels == 2000 and Settings(**s.values()) == s  # by name alone, and back


def test_a_bad_value_names_the_flag_and_the_variable(monkeypatch):
    monkeypatch.setenv("LEGO_EDIT_DISK_BUDGET", "lots")
    with pytest.raises(SettingsError, match=r"setting disk_budget \(--disk-budget, LEGO_EDIT_DISK_BUDGET\).*'lots'"):
        Settings.load()
    monkeypatch.delenv("LEGO_EDIT_DISK_BUDGET")
    for given, name in [({"builder": "gpt"}, "builder"), ({"port": "0"}, "port"), ({"remote_servers": ["x"]}, "remote_servers"),
                        ({"backend": "gpu"}, "backend"), ({"max_replans": -1}, "max_replans")]:
        with pytest.raises(SettingsError, match=f"setting {name} "):
            Settings.load(**given)
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        Settings.load(colour="red")


def test_the_cli_reports_a_bad_setting_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("LEGO_EDIT_MAX_BYTES", "-1")
    assert main(["tools"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lego-edit-mcp: setting max_bytes (--max-bytes, LEGO_EDIT_MAX_BYTES)") and err.count("\n") == 1
    assert main(["tools", "--model", "no-equals-sign"]) == 2
    assert "--model 'no-equals-sign': expected KEY=VALUE" in capsys.readouterr().err


def test_secrets_are_never_shown(monkeypatch, capsys):
    monkeypatch.setenv("LEGO_EDIT_TOKEN", "s3cret-token")
    monkeypatch.setenv("LEGO_EDIT_REMOTE_TOKEN_OTHER", "s3cret-remote")
    s = Settings.load(openai_api_key="s3cret-key")
    assert isinstance(s.http.token, SecretStr) and s.http.token.get_secret_value() == "s3cret-token"
    assert s.remote.remote_token["other"].get_secret_value() == "s3cret-remote"
    assert "s3cret" not in repr(s) + str(s)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "token = **********" in out and "s3cret" not in out
    with pytest.raises(SettingsError) as bad:
        Settings.load(token=["s3cret-list"])
    assert "s3cret" not in str(bad.value)


def test_serve_help_lists_every_setting_with_its_variable():
    out = subprocess.run([sys.executable, "-m", "server", "serve", "--help"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())  # argparse wraps long lines
    for name in SECTION_OF:
        assert flag_name(name) in flat and f"[{env_name(name)}]" in flat, name


def test_every_setting_has_one_name_and_says_what_it_does():
    for name in SECTION_OF:
        assert re.fullmatch(r"[a-z][a-z_]*", name) and field_of(name).description, name
    flags = [flag_name(n) for n in SECTION_OF]
    assert len(set(flags)) == len(flags)


def test_earlier_flag_spellings_still_work(capsys, tmp_path):
    assert main(["settings", "--allow-root", str(tmp_path), "--schemas", str(tmp_path), "--remote-server", "x=cmd"]) == 0
    out = capsys.readouterr().out
    assert f"allowed_roots = {tmp_path}" in out and f"schema_dirs = {tmp_path}" in out and "remote_servers = x=cmd" in out


def test_the_readme_table_is_the_fields():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table.strip() == markdown_table()


def test_no_setting_is_read_from_the_environment_outside_the_settings_modules():
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(")
    allowed = {Path("bricks/settings.py"), Path("server/settings.py")}  # XDG base directories, for defaults
    found = [p.relative_to(ROOT) for package in ("bricks", "builder", "server") for p in (ROOT / package).rglob("*.py")
             if readers.search(p.read_text()) and p.relative_to(ROOT) not in allowed]
    assert found == []
