"""Text-referred segmentation (RES) on the CPU, for the few phrases trained CPU models can ground.

People ("the woman", "him"), faces ("his face") and the main subject ("the subject", "the
foreground"); any other phrase is refused with how to pass a mask instead, never answered
with the mask of something else. The GPU backend (Grounding DINO + SAM) finds anything.
"""

from __future__ import annotations

import re

import numpy as np

from ..context import BrickContext
from ..errors import InvalidInput
from ..images import binary
from . import people
from .matting import cut_out
from .segment import segment_salient

_FACE = {"face", "faces", "facial", "complexion"}
_PERSON = set(
    "person people persons man men woman women boy boys girl girls child children kid kids baby guy guys lady ladies "
    "gentleman human humans someone somebody he she him her his hers they them their astronaut model".split()
)
_SUBJECT = {"subject", "foreground", "object", "it", "this", "thing", "figure"}
_FILLER = set("the a an main whole entire only just of in on at this that picture photo image central middle".split())
MASK_HINT = (
    "paint a mask over it and pass it (`mask` of lego_edit, --mask FILE on the command line), or use a GPU "
    "text-grounded segmentation model"
)


def target(phrase: str) -> str | None:
    """'face', 'person' or 'subject' when the phrase names one of them and nothing else, else None."""
    words = set(re.findall(r"[a-z]+", phrase.lower().replace("'s", " "))) - _FILLER
    if words & _FACE and not words - _FACE - _PERSON:
        return "face"
    if words & _PERSON and not words - _PERSON:
        return "person"
    if not words - _SUBJECT:
        return "subject"
    return None


def segment_by_text(image: np.ndarray, prompt: str, ctx: BrickContext) -> dict[str, np.ndarray]:
    kind = target(prompt)
    if kind is None:
        raise InvalidInput(
            f"the CPU backend can find only people, faces and the main subject, not '{prompt}': {MASK_HINT}",
            param="prompt",
        )
    if kind == "subject":
        return segment_salient(image, ctx)
    mask = people.person_mask(image, ctx.weights) > 0
    if kind == "face":  # the face's ellipse, less what lies off the person (background beside the ears)
        mask &= people.face_mask(image, ctx.weights) > 0
    if not mask.any():
        raise InvalidInput(f"no {kind} was found in the image for '{prompt}': {MASK_HINT}", param="prompt")
    mask = binary(mask)
    return {"mask": mask, "image": cut_out(image, mask)}
