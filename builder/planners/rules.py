"""An offline planner for common edits: no model, deterministic, honest about what it cannot parse.

The instruction is split into clauses ("make it warmer and blur the background"); each clause
must match one rule, or the whole instruction is refused. Edits chain: each works on the
previous edit's image. Understood: brightness / contrast / saturation / warmth / sharpness,
a style by name, recolouring, removal, background to a colour or a blur, outpainting by a
ratio, making the main object bigger or smaller, and cutting out the main object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bricks.cpu.colors import find_color
from bricks.cpu.style import find_style
from bricks.errors import InvalidInput

from .base import PlanRequest, PlanText

_PROTECTED = {"black and white": "b&w"}  # not split on its "and"
_SPLIT = re.compile(r"\s*(?:[;,.]|\band then\b|\bthen\b|\band\b)\s*", re.I)
_STRONG = re.compile(r"\b(much|a lot|very|way|far|significantly|strongly|really)\b", re.I)
_WEAK = re.compile(r"\b(slightly|a little|a bit|a touch|somewhat|subtly|a tad)\b", re.I)

# (pattern, setting, signed amount) for ADJUST
_ADJUSTMENTS = [
    (r"\b(brighter|lighter|brighten|lighten)\b", "brightness", 0.12),
    (r"\b(darker|darken|dimmer|dim)\b", "brightness", -0.12),
    (r"\b(more|increase|boost|higher|stronger|add)\b.*\bcontrast\b|\bcontrasty\b|\bpunchier\b", "contrast", 0.2),
    (r"\b(less|reduce|lower|decrease|softer)\b.*\bcontrast\b|\bflatter\b", "contrast", -0.2),
    (r"\b(vivid|vibrant|saturated|colou?rful|saturate|punchy)\b", "saturation", 0.3),
    (r"\b(desaturate|muted|less saturated|washed out|dull)\b", "saturation", -0.4),
    (r"\b(warmer|warm|warmth)\b", "warmth", 0.3),
    (r"\b(cooler|cool|colder|cold)\b", "warmth", -0.3),
    (r"\b(sharpen|sharper|crisper|crisp)\b", "sharpness", 0.6),
    (r"\b(soften|softer|blur|blurry|smooth)\b", "sharpness", -0.6),
]
_REMOVE = re.compile(r"\b(remove|erase|delete|get rid of|take out|take away|eliminate)\b\s*(?:the\s+)?(?P<object>.*)", re.I)
_BACKGROUND = re.compile(r"\b(background|backdrop|behind)\b", re.I)
_OUTPAINT = re.compile(r"\b(outpaint|expand|extend|zoom out|uncrop|widen|enlarge the (canvas|picture|image|photo))\b", re.I)
_RESIZE = re.compile(r"\b(bigger|larger|smaller|tinier|enlarge|shrink|twice as (big|large)|half (the|its) size)\b", re.I)
_CUTOUT = re.compile(r"\b(cut out|cutout|segment|isolate|extract|select)\b", re.I)
_RECOLOR = re.compile(r"\b(make|turn|paint|colou?r|change|recolou?r|dye)\b", re.I)


class PlanRefused(InvalidInput):
    """The rules planner cannot turn this instruction into a workflow."""


@dataclass
class _Builder:
    process: str
    available: set[str]
    mask: bool
    steps: list[dict[str, Any]] = field(default_factory=list)
    current: str = "init[image]"
    notes: list[str] = field(default_factory=list)

    def add(self, model: str, inputs: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, str]:
        n = len(self.steps) + 1
        refs = {name: f"step{n}[{name}]" for name in outputs}
        self.steps.append({"step": n, "model": model, "input": inputs, "output": refs})
        return refs

    def subject_mask(self, phrase: str = "") -> str:
        """The mask of what the clause is about: the user's mask, a named object, or the main subject."""
        if self.mask:
            return "init[mask]"
        if phrase and "RES" in self.available:
            return self.add("RES", {"image": "init[image]", "prompt": phrase}, ("mask",))["mask"]
        if phrase:
            self.notes.append(f"no text-grounded segmentation here: took the main subject for '{phrase}'")
        return self.add("SOS", {"image": "init[image]"}, ("mask",))["mask"]

    def workflow(self) -> dict[str, Any]:
        return {"process": self.process, "pipeline": [*self.steps, {"result": f"[{self.current}]"}]}


class RulesPlanner:
    name = "rules"
    deterministic = True  # re-planning would give the same answer

    async def plan(self, request: PlanRequest) -> PlanText:
        text = request.instruction
        has_mask = "mask" in request.inits
        if text.startswith("The user gave a mask. "):
            text = text[len("The user gave a mask. "):]
        b = _Builder(request.instruction, {s.builder_id for s in request.bricks}, has_mask)
        reasons = []
        adjust: dict[str, float] = {}
        for clause in _clauses(text):
            settings = _adjustments(clause)
            if settings and not (_BACKGROUND.search(clause) or _REMOVE.search(clause)):
                for key, value in settings.items():
                    adjust[key] = round(adjust.get(key, 0.0) + value, 3)
                reasons.append(f"'{clause}': " + ", ".join(f"{k} {v:+.2f}" for k, v in settings.items()))
                continue
            if adjust:  # flush pending adjustments before a different kind of edit
                _add_adjust(b, adjust)
                adjust = {}
            reasons.append(f"'{clause}': " + _plan_clause(b, clause))
        if adjust:
            _add_adjust(b, adjust)
        if not b.steps:
            raise PlanRefused(_refusal(text))
        reasoning = "; ".join(reasons + b.notes)
        return PlanText(reasoning, json.dumps(b.workflow()), {"planner": "rules"})


def _clauses(text: str) -> list[str]:
    lowered = text.strip().lower()
    for phrase, token in _PROTECTED.items():
        lowered = lowered.replace(phrase, token)
    return [p.strip() for p in _SPLIT.split(lowered) if p and p.strip()]


def _scale(clause: str) -> float:
    return 2.0 if _STRONG.search(clause) else 0.5 if _WEAK.search(clause) else 1.0


def _adjustments(clause: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for pattern, key, amount in _ADJUSTMENTS:
        if re.search(pattern, clause) and key not in out:
            out[key] = round(amount * _scale(clause), 3)
    return out


def _add_adjust(b: _Builder, settings: dict[str, float]) -> None:
    bounded = {k: max(-1.0, min(v, 2.0 if k == "sharpness" else 1.0)) for k, v in settings.items()}
    inputs = {"image": b.current, "mask": "init[mask]" if b.mask else None, **bounded}
    b.current = b.add("ADJUST", inputs, ("image",))["image"]


def _plan_clause(b: _Builder, clause: str) -> str:
    """Add the steps for one clause and say what they do; refuse what no rule matches."""
    if _BACKGROUND.search(clause):
        blur = re.search(r"\b(blur|blurred|blurry|bokeh|out of focus|defocus)", clause)
        colour = find_color(clause)
        if not blur and colour is None:
            raise PlanRefused(f"cannot plan '{clause}' offline: name a colour or ask for a blur (described scenes need a model planner and the GPU background brick)")
        subject = b.subject_mask()
        background = b.add("INVERSE", {"mask1": None, "mask2": subject, "image1": None, "image2": None}, ("mask",))["mask"]
        target = "a soft blur" if blur else colour[0] if colour else clause
        b.current = b.add("FLUX-CBG", {"image": b.current, "mask": background, "prompt": f"change the background to {target}"}, ("image",))["image"]
        return f"segment the subject, invert, background to {target}"
    if m := _REMOVE.search(clause):
        phrase = m.group("object").strip()
        mask = b.subject_mask(phrase)
        fast = b.add("FASTINPAINT", {"image": b.current, "mask": mask}, ("image", "score"))
        if "FLUX-INPAINT" in b.available:
            b.current = b.add("FLUX-INPAINT", {"image": b.current, "mask": mask, "preimage": fast["image"], "score": fast["score"]}, ("image",))["image"]
            return f"remove {phrase or 'the masked region'} (fast inpaint, diffusion refine)"
        b.current = fast["image"]
        return f"remove {phrase or 'the masked region'} (fast inpaint)"
    if _OUTPAINT.search(clause):
        return _outpaint(b, clause)
    if _RESIZE.search(clause) and not _OUTPAINT.search(clause):
        return _resize(b, clause)
    style = find_style(clause)
    if style is not None or re.search(r"\b(style|painting|drawing|look like|looks like)\b", clause):
        name = style or clause
        caption = b.add("CMI-PRED", {"image": b.current, "left_ratio": None, "right_ratio": None, "top_ratio": None, "bottom_ratio": None}, ("caption",))["caption"]
        b.current = b.add("FLUX-STYLE", {"image": b.current, "mask": "init[mask]" if b.mask else None, "prompt": caption, "style": f"{name} style"}, ("image",))["image"]
        return f"caption, then {name} style" + (" inside the mask" if b.mask else "")
    if _CUTOUT.search(clause):
        refs = b.add("SOS", {"image": b.current}, ("mask", "image")) if not b.mask else b.add("MASK-SEG", {"image": b.current, "mask": "init[mask]"}, ("mask", "image"))
        b.current = refs["image"]
        return "cut out the main subject" if not b.mask else "cut out the object in the mask"
    colour = find_color(clause)
    if colour is not None and _RECOLOR.search(clause):
        phrase = re.sub(r"\b(make|turn|paint|colou?r|change|recolou?r|dye|it|the|to|into|a|an)\b", " ", clause.replace(colour[0], " "))
        mask = b.subject_mask(" ".join(phrase.split()))
        b.current = b.add("FLUX-RCM", {"image": b.current, "mask": mask, "prompt": clause}, ("image",))["image"]
        return f"recolour to {colour[0]}"
    raise PlanRefused(_refusal(clause))


def _outpaint(b: _Builder, clause: str) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause) or re.search(r"by\s+(\d+)\s*%", clause)
    factor = 1.5 if m is None else (1 + float(m.group(1)) / 100 if "%" in m.group(0) else float(m.group(1)))
    factor = max(1.05, min(factor, 3.0))
    sides = [s for s in ("left", "right", "top", "bottom") if re.search(rf"\b{s}\b", clause)]
    if re.search(r"\b(sides|horizontal(ly)?|wider)\b", clause):
        sides += ["left", "right"]
    if re.search(r"\b(vertical(ly)?|taller)\b", clause):
        sides += ["top", "bottom"]
    sides = sorted(set(sides)) or ["left", "right", "top", "bottom"]
    ratios = {f"{s}_ratio": (factor if s in sides else 1.0) for s in ("left", "right", "top", "bottom")}
    canvas = b.add("CMI-PRED", {"image": b.current, **ratios}, ("caption", "image", "mask"))
    if "FLUX-FILL" in b.available:
        b.current = b.add("FLUX-FILL", {"image": canvas["image"], "mask": canvas["mask"], "prompt": canvas["caption"], "preimage": b.current}, ("image",))["image"]
        return f"outpaint x{factor} ({', '.join(sides)}) with generative fill"
    b.current = canvas["image"]
    b.notes.append("no generative fill here: the new area repeats the image's edge pixels")
    return f"enlarge the canvas x{factor} ({', '.join(sides)})"


def _resize(b: _Builder, clause: str) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause)
    if m:
        ratio = float(m.group(1))
    elif re.search(r"twice as (big|large)", clause):
        ratio = 2.0
    elif re.search(r"half (the|its) size", clause):
        ratio = 0.5
    else:
        ratio = 1.3 if re.search(r"\b(bigger|larger|enlarge)\b", clause) else 0.7
        ratio = 1 + (ratio - 1) * _scale(clause)
    if b.mask:
        seg = b.add("MASK-SEG", {"image": b.current, "mask": "init[mask]"}, ("mask", "image"))
    else:
        seg = b.add("SOS", {"image": b.current}, ("mask", "image"))
    hole = b.add("FASTINPAINT", {"image": b.current, "mask": seg["mask"]}, ("image",))["image"]
    moved = b.add("RESIZE", {"mask": None, "image": seg["image"], "ratio": round(ratio, 3)}, ("image",))["image"]
    b.current = b.add("COMPOSE", {"mask1": None, "mask2": None, "image1": hole, "image2": moved}, ("image",))["image"]
    return f"cut out the main object, remove it, scale it x{ratio:.2f} and paste it back"


def _refusal(clause: str, *, short: bool = False) -> str:
    text = (
        "the offline 'rules' planner understands brightness, contrast, saturation, warmth and sharpness; "
        "a style by name (grey, sepia, sketch, cartoon, watercolour); recolouring to a named colour; removing "
        "the masked or main object; a background in a colour or blurred; outpainting by a ratio; making the "
        "main object bigger or smaller; and cutting it out"
    )
    if short:
        return text
    return (
        f"cannot plan '{clause}' offline: {text}. For other edits use a model planner "
        "(--builder transformers, openai or sampling) or write the workflow yourself and call run_workflow"
    )
