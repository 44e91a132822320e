"""Whether a backend can run on this machine.

A GPU backend runs when an accelerator is visible, or when the model configuration sets
`device = "cpu"` and names every model the brick needs (tiny test models, or patience).
torch is imported only where a GPU could be present: no NVIDIA device node and no Apple
silicon means no accelerator, without paying torch's import.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import platform
import sys
from pathlib import Path

from .cpu.weights import Weights
from .spec import BrickSpec


@functools.cache
def accelerator() -> str | None:
    """'cuda' or 'mps' when torch sees one, else None."""
    apple_silicon = sys.platform == "darwin" and platform.machine() == "arm64"
    if not (glob.glob("/dev/nvidia[0-9]*") or apple_silicon) or importlib.util.find_spec("torch") is None:
        return None
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


_found: set[str] = set()  # only successes are remembered: a plugin may be installed later


def _installed(module: str, module_dir: Path | None) -> bool:
    if module in _found or module_dir is not None and (module_dir / f"{module}.py").is_file():
        return True
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False
    if found:
        _found.add(module)
    return found


def unavailable_reason(
    spec: BrickSpec, backend: str, preference: str, model_config, module_dir: Path | None = None,
    weights: Weights | None = None,
) -> str | None:
    """None when `spec`'s `backend` can run here, else why not. `module_dir`: see `Brick`;
    `weights`: the registry's trained files (a CPU backend that names some needs them)."""
    module = spec.backends[backend].partition(":")[0]
    if not _installed(module, module_dir):
        return f"its implementation '{module}' is not installed"
    if backend == "cpu":
        if not spec.weights:
            return None
        return weights.unavailable_reason(spec.weights) if weights is not None else "no models directory is set"
    if preference == "cpu":
        return "the CPU backend is forced (backend=cpu)"
    models = model_config.required(spec.models)
    if model_config.runtime.device == "cpu":
        missing = [k for k in models if not model_config.configured((k,))]
        return f"device is cpu and these models are not configured: {', '.join(missing)}" if missing else None
    if accelerator() is None:
        return "no GPU (CUDA or MPS) is visible; to run it on the CPU set device = \"cpu\" and configure its models"
    unset = [k for k in models if not (k in model_config.models and model_config.models[k].id)]
    return f"no model is set for: {', '.join(unset)}" if unset else None
