"""Image references: every way an input can be bad gets a clear `InvalidInput`."""

import base64
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bricks import InvalidInput
from bricks.refs import load_reference
from tests.conftest import photo


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def load(registry, settings):
    return lambda ref, **changes: load_reference(ref, store=registry.store, settings=settings.store.model_copy(update=changes))


def test_every_reference_form_gives_the_same_pixels(load, registry, settings):
    img = photo("astronaut")[:64, :80]
    data = png_bytes(img)
    path = settings.allowed_roots[0] / "a.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    for ref in (str(path), f"file://{path}", f"data:image/png;base64,{b64}", b64, registry.store.put(img).uri):
        np.testing.assert_array_equal(load(ref), img)


def test_relative_path_resolves_against_the_working_directory(load, settings, monkeypatch):
    root = settings.allowed_roots[0]
    (root / "sub").mkdir()
    Image.fromarray(photo("camera")[:32, :32]).save(root / "sub" / "g.png")
    monkeypatch.chdir(root)
    assert load("sub/g.png").shape == (32, 32, 3)  # grey photos come back as RGB


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink"])
def test_paths_outside_the_allowed_roots_are_refused(load, settings, tmp_path_factory, monkeypatch, escape):
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    Image.fromarray(photo("camera")[:16, :16]).save(outside)
    root = settings.allowed_roots[0]
    monkeypatch.chdir(root)
    if escape == "dotdot":
        ref = os.path.relpath(outside, root)
        assert ref.startswith("..")
    elif escape == "absolute":
        ref = str(outside)
    else:
        (root / "link.png").symlink_to(outside)
        ref = str(root / "link.png")
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        load(ref)


def test_missing_file(load, settings, monkeypatch):
    monkeypatch.chdir(settings.allowed_roots[0])
    with pytest.raises(InvalidInput, match="no such file"):
        load("does-not-exist.png")


def test_non_image_bytes(load, settings):
    path = settings.allowed_roots[0] / "notes.png"
    path.write_text("these are not pixels " * 10)
    with pytest.raises(InvalidInput, match="not an image"):
        load(str(path))


def test_truncated_png(load, settings):
    data = png_bytes(photo("astronaut"))
    path = settings.allowed_roots[0] / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="damaged or truncated"):
        load(str(path))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with a tiny compressed body: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 16, 9)  # only a few rows: the header is what matters
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(load):
    bomb = _bomb_png(60_000, 60_000)  # 3.6 gigapixels in a few hundred bytes
    assert len(bomb) < 10_000
    with pytest.raises(InvalidInput, match="decompression bomb"):
        load(base64.b64encode(bomb).decode())
    with pytest.raises(InvalidInput, match="over the limit"):  # under Pillow's guard, over ours
        load(base64.b64encode(_bomb_png(8_000, 8_000)).decode(), max_pixels=10_000_000)


def test_image_over_the_pixel_limit(load):
    data = png_bytes(photo("astronaut"))  # 512 x 512
    with pytest.raises(InvalidInput, match="262,144 pixels, over the limit of 100,000"):
        load(base64.b64encode(data).decode(), max_pixels=100_000)


def test_file_over_the_byte_limit(load, settings):
    path = settings.allowed_roots[0] / "big.png"
    path.write_bytes(png_bytes(photo("astronaut")))
    with pytest.raises(InvalidInput, match="over the limit of 1,000 bytes"):
        load(str(path), max_bytes=1000)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("data:image/png;base64,@@@@", "malformed base64"),
        ("data:image/png,rawtext", "malformed data URI"),
        ("data:text/plain;base64,aGVsbG8=", "media type 'text/plain'"),
        ("QUJD" * 8 + "=", "no such file"),  # not valid base64 length: treated as a path
        ("", "expected an image reference"),
        (12, "expected an image reference"),
    ],
)
def test_malformed_inline_data(load, ref, message, settings, monkeypatch):
    monkeypatch.chdir(settings.allowed_roots[0])
    with pytest.raises(InvalidInput, match=message):
        load(ref)


def test_unknown_and_malformed_store_uris(load):
    with pytest.raises(InvalidInput, match="no stored image"):
        load("lego://images/" + "ab" * 16)
    with pytest.raises(InvalidInput, match="not a valid image URI"):
        load("lego://images/../../etc/passwd")


def test_exif_orientation_is_applied(load, settings):
    img = photo("astronaut")[:40, :100]  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = settings.allowed_roots[0] / "rot.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=95)
    assert load(str(path)).shape == (100, 40, 3)


def test_a_missing_file_outside_the_roots_reveals_nothing(load, tmp_path):
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        load(str(tmp_path.parent / "no-such-dir" / "x.png"))


def test_a_symlink_swapped_after_the_check_is_caught_on_what_was_opened(load, settings, tmp_path, monkeypatch):
    import bricks.refs

    root = settings.allowed_roots[0]
    inside, secret = root / "inside.png", tmp_path.parent / f"{tmp_path.name}-secret.png"
    inside.write_bytes(png_bytes(photo("astronaut")[:16, :16]))
    secret.write_bytes(png_bytes(photo("coffee")[:16, :16]))
    link = root / "link.png"
    link.symlink_to(inside)
    real_open = os.open

    def swap_then_open(path, *args, **kwargs):  # the race, made certain: swapped after the check
        link.unlink()
        link.symlink_to(secret)
        return real_open(link, *args, **kwargs)

    monkeypatch.setattr(bricks.refs.os, "open", swap_then_open)
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        load(str(link))


def test_a_fifo_swapped_in_after_the_check_is_refused_at_once_not_waited_on(load, settings, monkeypatch):
    import bricks.refs

    path = settings.allowed_roots[0] / "pipe.png"
    path.write_bytes(png_bytes(photo("astronaut")[:16, :16]))
    real_open = os.open

    def swap_then_open(name, *args, **kwargs):
        path.unlink()
        os.mkfifo(path)
        return real_open(name, *args, **kwargs)  # a blocking open would wait here for a writer forever

    monkeypatch.setattr(bricks.refs.os, "open", swap_then_open)
    with pytest.raises(InvalidInput, match="not a regular file"):
        load(str(path))


@pytest.mark.parametrize(
    "path, reason",
    [("a\x00b.png", "NUL byte"), ("x" * 300 + ".png", "too long"), ("/".join(["d"] * 2100), "too long")],
    ids=["nul", "long-name", "long-path"],
)
def test_bad_paths_are_caller_errors_without_server_paths(registry, settings, path, reason):
    import anyio

    with pytest.raises(InvalidInput, match=f"parameter `image`: file path .*{reason}") as err:
        anyio.run(registry.call, "adjust", {"image": path, "brightness": 0.1})
    assert str(settings.allowed_roots[0]) not in str(err.value)
