"""An offline planner for common edits: no model, deterministic, honest about what it cannot do.

The instruction is read by `lexicon` (typos, clauses, each clause's target and tone amounts);
each clause becomes one edit of its target: the whole image, the user's mask, the background,
the main subject, a person or a face. A clause no rule matches goes to the nearest intent by
sentence embedding (`intents`), and is refused when none is near. Amounts, colours, styles and
ratios are always read from the user's own words. Edits chain: each works on the previous
edit's image.

A clause that names any other object ("remove the spoon") is refused with how to pass a mask,
unless a GPU text-grounded segmenter runs RES: the CPU default cannot find arbitrary objects
and never edits something else instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from bricks.cpu.referring import MASK_HINT
from bricks.cpu.style import find_style
from bricks.cpu.weights import Weights
from bricks.errors import InvalidInput
from bricks.spec import BrickSpec

from . import intents
from . import lexicon as lx
from ..prompt import bare_instruction
from .base import PlanRequest, PlanText


GENERAL_EDITORS = ("QWEN-EDIT", "KLEIN-EDIT", "KONTEXT-EDIT")
"""Editors that take any instruction, strongest first (GEdit-Bench-EN 7.88, 7.41 for FLUX.2 [dev], 6.00):
what the rules planner hands a clause it has no precise rule for, when one runs here."""


class PlanRefused(InvalidInput):
    """The rules planner cannot turn this instruction into a workflow."""


@dataclass
class _Builder:
    process: str
    available: dict[str, BrickSpec]  # builder id -> spec
    mask: bool
    locates_anything: bool  # RES runs on a GPU model that can ground any phrase
    weights: Weights  # MiniLM, for the nearest intent
    steps: list[dict[str, Any]] = field(default_factory=list)
    current: str = "init[image]"
    notes: list[str] = field(default_factory=list)
    segments: dict[tuple[str, tuple[str, ...]], dict[str, str]] = field(default_factory=dict)
    inverses: dict[str, str] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)  # the user's further images, for a general editor

    def general_editor(self) -> str | None:
        """The strongest general instruction editor available, if any."""
        return next((e for e in GENERAL_EDITORS if e in self.available), None)

    def add(self, model: str, inputs: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, str]:
        n = len(self.steps) + 1
        refs = {name: f"step{n}[{name}]" for name in outputs}
        self.steps.append({"step": n, "model": model, "input": inputs, "output": refs})
        return refs

    def segment(self, target: lx.Target, outputs: tuple[str, ...] = ("mask",)) -> dict[str, str]:
        """Mask (and cut-out) of the clause's target: the user's mask, a person or face, an object, or the main subject."""
        if self.mask:
            return self.add("MASK-SEG", {"image": self.current, "mask": "init[mask]"}, outputs) if "image" in outputs else {"mask": "init[mask]"}
        if target.kind == "object" and not self.locates_anything:
            raise PlanRefused(f"cannot find '{target.phrase}' without a model: {MASK_HINT}")
        by_text = target.kind in ("person", "face", "object") and "RES" in self.available
        key = (target.phrase if by_text else "", outputs)
        if key not in self.segments:  # one segmentation per target, however many clauses use it
            self.segments[key] = (
                self.add("RES", {"image": "init[image]", "prompt": target.phrase}, outputs)
                if by_text
                else self.add("SOS", {"image": "init[image]"}, outputs)
            )
        return self.segments[key]

    def background(self, target: lx.Target) -> str:
        subject = self.segment(target if target.kind in ("person", "face") else lx.Target("subject", ""))["mask"]
        if subject not in self.inverses:
            self.inverses[subject] = self.add("INVERSE", {"mask1": None, "mask2": subject, "image1": None, "image2": None}, ("mask",))["mask"]
        return self.inverses[subject]

    def workflow(self) -> dict[str, Any]:
        """The pipeline, with outputs nothing reads written as null (not produced, no warning)."""
        used = {self.current} | {v for step in self.steps for v in step["input"].values() if isinstance(v, str)}
        steps = [{**step, "output": {k: (v if v in used else None) for k, v in step["output"].items()}} for step in self.steps]
        return {"process": self.process, "pipeline": [*steps, {"result": f"[{self.current}]"}]}


class RulesPlanner:
    name = "rules"
    deterministic = True  # re-planning would give the same answer

    def __init__(self, weights: Weights):
        """`weights`: the trained files; MiniLM among them reads typos and paraphrases (optional)."""
        self.weights = weights

    async def plan(self, request: PlanRequest) -> PlanText:
        # Off the event loop: reading the instruction (and the embedder, on a first use) takes CPU time.
        return await anyio.to_thread.run_sync(self._plan, request)

    def _plan(self, request: PlanRequest) -> PlanText:
        text = bare_instruction(request.instruction)
        has_mask = "mask" in request.inits
        gpu_res = request.backends.get("RES") not in (None, "cpu")
        b = _Builder(request.instruction, {s.builder_id: s for s in request.bricks}, has_mask, gpu_res, self.weights)
        b.references = [f"init[{name}]" for name, kind in request.inits.items() if name not in ("image", "mask") and kind == "Image"]
        reasons: list[str] = []
        remarks: list[tuple[str, PlanRefused]] = []
        adjust: dict[str, float] = {}
        for clause, target, settings in lx.understood(lx.clauses(lx.corrected(text, self.weights)), has_mask):
            if settings is not None and target.kind in ("image", "mask") and not lx.other_edit(clause):
                for key, value in settings.items():
                    adjust[key] = round(adjust.get(key, 0.0) + value, 3)
                reasons.append(f"'{clause}': " + ", ".join(f"{k} {v:+.2f}" for k, v in settings.items()))
                continue
            if adjust:  # flush pending adjustments before a different kind of edit
                _add_adjust(b, adjust)
                adjust = {}
            done = len(b.steps)
            try:
                reasons.append(f"'{clause}': " + _plan_clause(b, clause, target, settings))
            except PlanRefused as refusal:
                if lx.EDIT_VERB.search(clause):
                    raise
                del b.steps[done:]  # a remark, not a request ("thanks", "like a green screen"): left out
                remarks.append((clause, refusal))
        if adjust:
            _add_adjust(b, adjust)
        if not b.steps:
            raise remarks[0][1] if remarks else PlanRefused(_refusal(text))
        b.notes += [f"ignored '{clause}'" for clause, _ in remarks]
        return PlanText("; ".join(reasons + b.notes), json.dumps(b.workflow()), {"planner": "rules"})


def _add_adjust(b: _Builder, settings: dict[str, float], mask: str | None = None) -> None:
    bounded = {}
    for k, v in settings.items():
        low, high = lx.LIMITS.get(k, (-1.0, 1.0))
        bounded[k] = max(low, min(1 + v if k == "gamma" else v, high))
    mask = mask or ("init[mask]" if b.mask else None)
    b.current = b.add("ADJUST", {"image": b.current, "mask": mask, **bounded}, ("image",))["image"]


def _plan_clause(b: _Builder, clause: str, target: lx.Target, settings: dict[str, float] | None = None, *, guessed: bool = False) -> str:
    """Add the steps for one clause and say what they do; refuse what no rule matches."""
    words = lx.words_of(clause)
    if lx.ADDITION.search(clause) and b.general_editor():
        return _general(b, clause)
    if lx.OUTPAINT.search(clause) and not (lx.RESIZE.search(clause) and target.kind in ("subject", "person", "object")):
        return _outpaint(b, clause)
    removal = lx.REMOVE.search(clause)
    if target.kind == "background" and not (removal and not re.match(r"\s*(?:the\s+)?(?:background|backdrop|bg)\b", clause[removal.end():])):
        return _background(b, clause, target)
    if lx.CUTOUT.search(clause):
        refs = b.segment(target, ("mask", "image"))
        b.current = refs["image"]
        return f"cut out {target.phrase or 'the main subject' if not b.mask else 'the object in the mask'}"
    if removal:
        target = target if target.kind != "background" else lx.target_of(clause[removal.end():].split(" in ")[0], b.mask)
        if not b.mask and target.kind not in ("object", "person", "face"):
            raise PlanRefused(f"cannot tell what to remove in '{clause}': {MASK_HINT}")
        if not b.mask and not b.locates_anything:
            if b.general_editor():  # it finds the object itself
                return _general(b, clause)
            raise PlanRefused(f"cannot remove '{target.phrase}' without a model: {MASK_HINT}")
        mask = b.segment(target)["mask"]
        fast = b.add("FASTINPAINT", {"image": b.current, "mask": mask}, ("image", "score"))
        if "FLUX-INPAINT" in b.available:
            b.current = b.add("FLUX-INPAINT", {"image": b.current, "mask": mask, "preimage": fast["image"], "score": fast["score"]}, ("image",))["image"]
            return f"remove {target.phrase or 'the masked region'} (fast inpaint, diffusion refine)"
        b.current = fast["image"]
        return f"remove {target.phrase or 'the masked region'} (fast inpaint)"
    if lx.RESIZE.search(clause) and (target.kind != "image" or "it" in words):
        return _resize(b, clause, target)
    style = find_style(clause)
    settings = settings if settings is not None else lx.adjustments(clause)
    if target.kind in ("subject", "person", "face", "object") and (settings or style == "grey"):
        mask = b.segment(target)["mask"]
        _add_adjust(b, settings or {"saturation": -1.0}, mask)
        return f"{', '.join(f'{k} {v:+.2f}' for k, v in settings.items()) or 'grey'} on {target.phrase or 'the main subject'}"
    if style is not None or words & {"painting", "drawing", "style"}:  # a style, known or not: never guessed
        if style is None:
            if b.general_editor():
                return _general(b, clause)
            raise PlanRefused(_refusal(clause))
        mask = b.segment(target)["mask"] if target.kind not in ("image", "mask") else "init[mask]" if b.mask else None
        caption = b.add("CMI-PRED", {"image": b.current, "left_ratio": None, "right_ratio": None, "top_ratio": None, "bottom_ratio": None}, ("caption",))["caption"]
        b.current = b.add("FLUX-STYLE", {"image": b.current, "mask": mask, "prompt": caption, "style": f"{style} style"}, ("image",))["image"]
        return f"caption, then {style} style" + (" inside the mask" if mask else "")
    colour = lx.colour(clause)
    if colour is not None and not lx.ADDITION.search(clause) and (lx.RECOLOR.search(clause) or target.kind != "image"):
        mask = b.segment(target if target.kind != "image" else lx.Target("subject", ""))["mask"]
        b.current = b.add("FLUX-RCM", {"image": b.current, "mask": mask, "prompt": f"make it {colour[0]}"}, ("image",))["image"]
        return f"recolour {target.phrase or 'the main subject' if not b.mask else 'the masked object'} to {colour[0]}"
    if not guessed and (found := intents.nearest(clause, b.weights)):
        intent, score = found
        b.notes.append(f"read '{clause}' as '{intent}' (similarity {score:.2f})")
        extra = " ".join(m.group(0) for m in (lx.STRONG.search(clause), lx.WEAK.search(clause)) if m)
        again = f"{intent} {extra}".strip()
        settings = lx.adjustments(again)
        if settings and target.kind in ("image", "mask"):
            _add_adjust(b, settings)
            return ", ".join(f"{k} {v:+.2f}" for k, v in settings.items())
        return _plan_clause(b, again, target, guessed=True)  # the intent, applied to what the user's clause is about
    if b.general_editor() and lx.EDIT_VERB.search(clause):
        return _general(b, clause)
    raise PlanRefused(_refusal(clause))


def _general(b: _Builder, clause: str) -> str:
    """The clause as it stands, given to the strongest general editor at hand (inside the user's mask, if any)."""
    editor = b.general_editor()
    spec = b.available[editor]
    inputs = {p.name: None for p in spec.inputs if not p.required} | {"image": b.current, "prompt": clause}
    if b.mask and spec.input("mask") is not None:
        inputs["mask"] = "init[mask]"
    for name, ref in zip((p.name for p in spec.inputs if p.name.startswith("reference")), b.references, strict=False):
        inputs[name] = ref
    b.current = b.add(editor, inputs, ("image",))["image"]
    return f"'{clause}' by the general editor {editor}" + (" inside the mask" if b.mask else "")


def _background(b: _Builder, clause: str, target: lx.Target) -> str:
    words = lx.words_of(clause)
    subject = lx.Target("person", target.phrase) if target.phrase else lx.Target("subject", "")
    if (lx.CUTOUT.search(clause) or lx.DROP_BACKGROUND.search(clause)) and lx.colour(clause) is None and not words & lx.BLUR:
        refs = b.segment(subject, ("mask", "image"))
        b.current = refs["image"]
        return f"cut out {target.phrase or 'the main subject'} (transparent background)"
    settings = lx.adjustments(clause)
    if words & lx.GREY:
        settings = {**settings, "saturation": -1.0}
    if words & lx.BLUR:
        settings.pop("sharpness", None)  # "blurry background" asks for a blur, not a softer picture
    if settings:
        _add_adjust(b, settings, b.background(subject))
        return ", ".join(f"{k} {v:+.2f}" for k, v in settings.items()) + " on the background"
    blur = bool(words & lx.BLUR) or "out of focus" in clause
    colour = lx.colour(clause)
    if not blur and colour is None:
        raise PlanRefused(f"cannot plan '{clause}' offline: name a colour or ask for a blur (described scenes need a model planner and the GPU background brick)")
    background = b.background(subject)
    what = "a soft blur" if blur else colour[0]
    b.current = b.add("FLUX-CBG", {"image": b.current, "mask": background, "prompt": f"change the background to {what}"}, ("image",))["image"]
    return f"segment {target.phrase or 'the subject'}, invert, background to {what}"


def _outpaint(b: _Builder, clause: str) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause)
    pct = lx.PERCENT.search(clause)
    factor = float(m.group(1)) if m else 1 + int(pct.group(1)) / 100 if pct else 1.25 if lx.WEAK.search(clause) else 1.5
    factor = max(1.05, min(factor, 3.0))
    sides = [s for s in ("left", "right", "top", "bottom") if re.search(rf"\b{s}\b", clause)]
    sides += ["top"] * bool(re.search(r"\b(up|upwards|above)\b", clause)) + ["bottom"] * bool(re.search(r"\b(down|downwards|below)\b", clause))
    if re.search(r"\b(sides|horizontal(ly)?|wider|widen|width|panorama)\b", clause):
        sides += ["left", "right"]
    if re.search(r"\b(vertical(ly)?|taller|height)\b", clause):
        sides += ["top", "bottom"]
    sides = sorted(set(sides)) or ["left", "right", "top", "bottom"]
    ratios = {f"{s}_ratio": (factor if s in sides else 1.0) for s in ("left", "right", "top", "bottom")}
    canvas = b.add("CMI-PRED", {"image": b.current, **ratios}, ("caption", "image", "mask"))
    if "FLUX-FILL" in b.available:
        b.current = b.add("FLUX-FILL", {"image": canvas["image"], "mask": canvas["mask"], "prompt": canvas["caption"], "preimage": b.current}, ("image",))["image"]
        return f"outpaint x{factor} ({', '.join(sides)}) with generative fill"
    b.current = canvas["image"]
    b.notes.append("no generative fill here: the new area is a blurred continuation of the edges, not invented content")
    return f"enlarge the canvas x{factor} ({', '.join(sides)})"


def _resize(b: _Builder, clause: str, target: lx.Target) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause)
    if m:
        ratio = float(m.group(1))
    elif re.search(r"twice as (big|large)|double", clause):
        ratio = 2.0
    elif re.search(r"half (the|its) size|halve", clause):
        ratio = 0.5
    else:
        ratio = 1.3 if re.search(r"\b(bigger|larger|enlarge|grow)\b", clause) else 0.7
        ratio = 1 + (ratio - 1) * lx.scale(clause)
    if m is None and (pct := lx.PERCENT.search(clause)):
        ratio = int(pct.group(1)) / 100
        ratio = ratio if re.search(r"\b(smaller|shrink|tinier|reduce)\b", clause) or ratio > 1 else 1 + ratio
    if ratio < 1 and re.search(r"\b(smaller|shrink|tinier)\b", clause) is None and m is None:
        ratio = 1 / ratio
    seg = b.segment(target if target.kind != "image" else lx.Target("subject", ""), ("mask", "image"))
    hole = b.add("FASTINPAINT", {"image": b.current, "mask": seg["mask"]}, ("image",))["image"]
    moved = b.add("RESIZE", {"mask": None, "image": seg["image"], "ratio": round(ratio, 3)}, ("image",))["image"]
    b.current = b.add("COMPOSE", {"mask1": None, "mask2": None, "image1": hole, "image2": moved}, ("image",))["image"]
    return f"cut out {target.phrase or 'the main object'}, remove it, scale it x{ratio:.2f} and paste it back"


def _refusal(clause: str) -> str:
    text = (
        "the offline 'rules' planner understands brightness, contrast, saturation, warmth, sharpness and gamma, "
        "for the whole image, the background, the main subject, a person or a face; a style by name (grey, sepia, "
        "sketch, cartoon, watercolour); recolouring the main subject or a masked object to a named colour; removing "
        "a masked object; a background in a colour, blurred or transparent; outpainting by a ratio; making the main "
        "object bigger or smaller; and cutting it out. Other objects need a mask; adding objects, actions and text "
        "need a general editor (qwen_image_edit, flux2_klein_edit or kontext_edit, on a GPU)"
    )
    return (
        f"cannot plan '{clause}' offline: {text}. For other edits use a model planner "
        "(--builder transformers, openai or sampling) or write the workflow yourself and call run_workflow"
    )
