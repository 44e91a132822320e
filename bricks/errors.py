"""The three kinds of failure, kept apart.

- `InvalidInput`: the caller can fix it (bad argument, bad image, unknown tool).
  Its message names the brick and the parameter, and is safe to show to a model.
- `BrickFailed`: the call was fine but the work failed (a bug, a model error).
- `SchemaError`: a brick schema file is wrong; raised at start-up, names the file.
"""

from __future__ import annotations

from typing import Any


class LegoEditError(Exception):
    """Base of every error this project raises on purpose."""

    def details(self) -> dict[str, Any] | None:
        """Facts a caller can act on beyond the message (the step, the issues, the attempts), if any."""
        return None


class InvalidInput(LegoEditError):
    """A problem the caller can fix; names the brick and the parameter when known."""

    def __init__(self, reason: str, *, param: str | None = None, brick: str | None = None):
        self.reason = reason
        self.param = param
        self.brick = brick
        super().__init__(reason)

    def __str__(self) -> str:
        where = []
        if self.brick:
            where.append(f"tool '{self.brick}'")
        if self.param:
            where.append(f"parameter `{self.param}`")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def located(self, *, brick: str | None = None, param: str | None = None) -> InvalidInput:
        """Fill in the brick / parameter if the raiser did not know them."""
        self.brick = self.brick or brick
        self.param = self.param or param
        return self


class UnknownTool(InvalidInput):
    """No brick (or tool) of that name is registered."""


class BrickFailed(LegoEditError):
    """The brick ran on valid input and failed; the message says why, without a traceback."""

    def __init__(self, brick: str, reason: str):
        self.brick = brick
        self.reason = reason
        super().__init__(f"tool '{brick}' failed: {reason}")


class SchemaError(LegoEditError):
    """A brick schema file is malformed or inconsistent."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")
