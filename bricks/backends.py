"""Whether a backend can run on this machine. Torch is imported only when a GPU backend is asked about."""

from __future__ import annotations

import functools
import importlib.util


@functools.cache
def accelerator() -> str | None:
    """'cuda' or 'mps' when torch sees one, else None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return None


@functools.cache
def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def unavailable_reason(backend: str, target: str, preference: str) -> str | None:
    """None when `backend` (implemented at `target`, 'module:attr') can run here, else why not."""
    module = target.partition(":")[0]
    if not _installed(module):
        return f"its implementation '{module}' is not installed"
    if backend == "cpu":
        return None
    if preference == "cpu":
        return "the CPU backend is forced (backend=cpu)"
    if accelerator() is None:
        return "no GPU (CUDA or MPS) is visible to torch"
    return None
