"""Model-level editing bricks: schemas, the registry that runs them, and the image store."""

from .brick import Brick
from .context import BrickContext
from .errors import BrickFailed, InvalidInput, LegoEditError, SchemaError, UnknownTool
from .registry import Registry
from .settings import BrickSettings, StoreSettings
from .spec import BrickSpec
from .store import ImageStore, StoredImage

__all__ = [
    "Brick",
    "BrickContext",
    "BrickFailed",
    "BrickSpec",
    "ImageStore",
    "InvalidInput",
    "LegoEditError",
    "Registry",
    "SchemaError",
    "BrickSettings",
    "StoreSettings",
    "StoredImage",
    "UnknownTool",
]
