"""An offline planner for common edits: no model, deterministic, honest about what it cannot do.

The instruction is corrected for typos (against the words the rules know), split into clauses
("make it warmer and blur the background"), and each clause is matched to one edit and one
target: the whole image, the user's mask, the background, the main subject, a person or a
face. A clause no rule matches goes to the nearest intent by sentence embedding (`intents`),
and is refused when none is near. Amounts, colours, styles and ratios are always read from the
user's own words. Edits chain: each works on the previous edit's image.

A clause that names any other object ("remove the spoon") is refused with how to pass a mask,
unless a GPU text-grounded segmenter runs RES: the CPU default cannot find arbitrary objects
and never edits something else instead.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from bricks.cpu import weights
from bricks.cpu.colors import find_color
from bricks.cpu.referring import MASK_HINT
from bricks.cpu.referring import target as person_target
from bricks.cpu.style import STYLES, find_style
from bricks.errors import InvalidInput

from . import intents
from .base import PlanRequest, PlanText

_PROTECTED = {"grey scale": "greyscale", "black and white": "b&w", "black-and-white": "b&w", "cut-out": "cutout", "left and right": "left & right", "top and bottom": "top & bottom"}  # not split on "and"
_SPLIT = re.compile(r"\s*(?:[;,!?]|:(?!\d)|\.(?!\d)|\band then\b|\bthen\b|\band also\b|\band\b|\bbut\b|\bplus\b|\bwhile\b|\bso that\b|\bso\b)\s*")
_STRONG = re.compile(r"\b(much|a lot|lots|very|way|far|significantly|strongly|really|heavily|super|extremely|way more)\b")
_WEAK = re.compile(r"\b(slightly|a little|a bit|a touch|somewhat|subtly|a tad|a little bit|gently|mildly|bit)\b")
_TOO = re.compile(r"\b(?:too|overly|less|not so|not as)\s+(dark|bright|underexposed|overexposed|dim)\b")
_PERCENT = re.compile(r"(\d{1,3})\s*%")

_UP = {"nudge", "more", "increase", "boost", "raise", "higher", "stronger", "add", "pump", "crank", "bump", "up", "enhance", "intensify", "deepen", "richer", "amp", "push", "heighten", "lift"}
_DOWN = {"ease", "less", "reduce", "lower", "decrease", "softer", "weaker", "tone", "mute", "drop", "cut", "minus", "fewer", "soften", "down", "dial", "tame", "diminish"}
# setting -> (words that mean "more of it" alone, words that mean "less of it" alone, nouns taking _UP/_DOWN)
_ADJUST: dict[str, tuple[set[str], set[str], set[str]]] = {
    "brightness": (
        {"brighter", "brighten", "lighter", "lighten", "illuminate", "brightened", "underexposed", "gloomy"},
        {"darker", "darken", "dimmer", "dim", "moodier", "darkened", "overexposed"},
        {"brightness", "exposure", "light", "lightness"},
    ),
    "contrast": ({"contrasty", "punchier"}, {"flatter", "flatten"}, {"contrast"}),
    "saturation": (
        {"vivid", "vibrant", "saturated", "colourful", "saturate", "punchy", "pop", "vivider"},
        {"desaturate", "desaturated", "muted", "mute", "dull", "duller", "faded", "pastel", "washed", "oversaturated", "garish"},
        {"saturation", "colours", "colour", "vibrance", "vibrancy", "intensity"},
    ),
    "warmth": ({"warmer", "warm", "warmth", "golden"}, {"cooler", "cool", "colder", "cold", "icy", "chilly", "clinical"}, {"temperature", "warmth"}),
    "sharpness": (
        {"sharpen", "sharper", "crisper", "crisp", "clearer", "defined", "sharp", "deblur", "unblur", "detailed"},
        {"soften", "softer", "blurry", "smooth", "smoother", "dreamy", "hazy"},
        {"sharpness", "detail", "details", "clarity", "definition"},
    ),
    "gamma": (set(), set(), {"gamma", "midtones"}),
}
_AMOUNT = {"brightness": 0.12, "contrast": 0.2, "saturation": 0.3, "warmth": 0.3, "sharpness": 0.6, "gamma": 0.25}
_LIMITS = {"sharpness": (-1.0, 2.0), "gamma": (0.2, 5.0)}
_GREY = {"b&w", "grey", "gray", "greyscale", "grayscale", "monochrome", "colourless"}

_BACKGROUND = {"background", "backdrop", "behind", "surroundings", "bg", "except", "bokeh"}
_BLUR = {"blur", "blurred", "blurry", "bokeh", "defocus", "defocused", "unfocused", "focus", "blurring", "depth"}
_REMOVE = re.compile(r"\b(remove|erase|delete|get rid of|take out|take away|eliminate|clear|wipe|inpaint|disappear|vanish)\b")
_CUTOUT = re.compile(r"\b(cut\s*out|cutout|cut (?:\w+ ){0,3}out|isolate|extract|segment|select|mask out|separate|knock out)\b")
_DROP_BACKGROUND = re.compile(r"\b(remove|delete|erase|drop|get rid of|knock out|take out|transparent|no|kill|ditch|lose|nuke|strip)\b")
_OUTPAINT = re.compile(
    r"\b(outpaint\w*|uncrop|zoom(?:ed)? out|expand|extend\w*|widen|wider (?:shot|view|frame)|enlarge the (?:canvas|frame|picture|image|photo)"
    r"|(?:more|extra) (?:space|room)|bigger canvas|larger canvas|pull back|show more)\b"
)
_RESIZE = re.compile(r"\b(bigger|larger|smaller|tinier|enlarge|shrink|scale|twice as (?:big|large)|half (?:the|its) size|grow|reduce the size)\b")
_RECOLOR = re.compile(r"\b(make|turn|paint|colou?r|change|recolou?r|dye|tint|repaint)\b")
_STYLE_WORDS = re.compile(r"\b(style|painting|drawing|look like|looks like|effect|filter|version|photo)\b")
_KEEP = re.compile(r"^(keep|leave|preserve|don't touch|do not touch)\b|\b(stands?|pops?)\s+out$|^(please|thanks|thank you|thank u|thx|ty|cheers|plz|pls|it|this)$")
_MASKED = re.compile(r"\b(?:what|that|which)?\s*(?:i've|i have|i)\s+(?:masked|painted|selected|marked|highlighted)(?:\s+it)?\b")
_DESCRIPTIVE = re.compile(
    r"^(?:(?:it|this|that|everything|the \w+|\w+)(?:'s| is| are| looks?| seems?| feels?| has| have)\b|(?:its|it's|too|way too|kinda|looks?|feels?|seems?)\b)"
)
_EDIT_VERB = re.compile(
    r"\b(add|put|insert|place|make|turn|change|replace|swap|write|draw|remove|delete|erase|move|give|transform|convert|create"
    r"|generate|paint|recolou?r|dye|rotate|flip|crop|age|animate)\b"
)

_SUBJECT = {"subject", "foreground", "object"}
_GENERIC = (  # words after "the"/"his"/... that name no object
    set("image photo picture pic shot whole entire overall colours colour tones tone lighting light shadows highlights canvas frame "
        "left right top bottom sides side edges edge corners style effect main thing photograph scene exposure contrast saturation "
        "brightness warmth sharpness gamma midtones detail details clarity temperature vibrance mask masked area region selection "
        "part parts one rest space room it this size version look feel mood subject foreground object background backdrop "
        "soft dreamy nice subtle strong gentle plain solid pure new old different same current overall little bit touch lot".split())
)
_DETERMINER = re.compile(r"\b(?:the|his|her|their|its|that|those|these|my)\s+([a-z]{3,})(?:\s+([a-z]+))?")
# CSS colour names that are more often things than colours in an instruction
_NOT_COLOURS = {"snow", "chocolate", "tomato", "salmon", "orchid", "linen", "wheat", "peru", "bisque", "moccasin", "honeydew", "seashell", "thistle", "lime", "tan"}

_VOCAB = sorted(
    {w for s in _ADJUST.values() for group in s for w in group}
    | _UP | _DOWN | _GREY | _BACKGROUND | _BLUR | _SUBJECT | _GENERIC
    | {alias for name, (_, aliases) in STYLES.items() for alias in (name, *aliases) if " " not in alias}
    | set("remove erase delete eliminate cutout isolate extract segment select outpaint uncrop zoom expand extend widen bigger larger "
          "smaller tinier enlarge shrink twice half recolour recolor paint change white black blue green yellow orange purple pink "
          "brown red please could would make turn person people woman man face watercolour watercolor cartoon sketch pencil sepia "
          "vintage comic drawing saturation colourful behind".split())
)
_KEYWORDS = set(_VOCAB)


class PlanRefused(InvalidInput):
    """The rules planner cannot turn this instruction into a workflow."""


@dataclass
class _Builder:
    process: str
    available: set[str]
    mask: bool
    locates_anything: bool  # RES runs on a GPU model that can ground any phrase
    steps: list[dict[str, Any]] = field(default_factory=list)
    current: str = "init[image]"
    notes: list[str] = field(default_factory=list)
    segments: dict[tuple[str, str, tuple[str, ...]], dict[str, str]] = field(default_factory=dict)
    inverses: dict[str, str] = field(default_factory=dict)

    def add(self, model: str, inputs: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, str]:
        n = len(self.steps) + 1
        refs = {name: f"step{n}[{name}]" for name in outputs}
        self.steps.append({"step": n, "model": model, "input": inputs, "output": refs})
        return refs

    def segment(self, target: _Target, outputs: tuple[str, ...] = ("mask",)) -> dict[str, str]:
        """Mask (and cut-out) of the clause's target: the user's mask, a person or face, an object, or the main subject."""
        if self.mask:
            return self.add("MASK-SEG", {"image": self.current, "mask": "init[mask]"}, outputs) if "image" in outputs else {"mask": "init[mask]"}
        if target.kind == "object" and not self.locates_anything:
            raise PlanRefused(f"cannot find '{target.phrase}' without a model: {MASK_HINT}")
        key = (target.kind if target.kind in ("person", "face", "object") and "RES" in self.available else "subject", target.phrase, outputs)
        if key[0] == "subject":
            key = ("subject", "", outputs)
        if key not in self.segments:  # one segmentation per target, however many clauses use it
            if key[0] == "subject":
                self.segments[key] = self.add("SOS", {"image": "init[image]"}, outputs)
            else:
                self.segments[key] = self.add("RES", {"image": "init[image]", "prompt": target.phrase}, outputs)
        return self.segments[key]

    def background(self, target: _Target) -> str:
        subject = self.segment(target if target.kind in ("person", "face") else _Target("subject", ""))["mask"]
        if subject not in self.inverses:
            self.inverses[subject] = self.add("INVERSE", {"mask1": None, "mask2": subject, "image1": None, "image2": None}, ("mask",))["mask"]
        return self.inverses[subject]

    def workflow(self) -> dict[str, Any]:
        return {"process": self.process, "pipeline": [*self.steps, {"result": f"[{self.current}]"}]}


@dataclass(frozen=True)
class _Target:
    kind: str  # image, mask, background, subject, person, face, object
    phrase: str


class RulesPlanner:
    name = "rules"
    deterministic = True  # re-planning would give the same answer

    async def plan(self, request: PlanRequest) -> PlanText:
        text = request.instruction
        has_mask = "mask" in request.inits
        if text.startswith("The user gave a mask. "):
            text = text[len("The user gave a mask. "):]
        gpu_res = request.backends.get("RES") not in (None, "cpu")
        b = _Builder(request.instruction, {s.builder_id for s in request.bricks}, has_mask, gpu_res)
        reasons: list[str] = []
        remarks: list[tuple[str, PlanRefused]] = []
        adjust: dict[str, float] = {}
        for clause, target, settings in _understood(_clauses(_corrected(text)), has_mask):
            if settings is not None and target.kind in ("image", "mask") and not _other_edit(clause):
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
                if _EDIT_VERB.search(clause):
                    raise
                del b.steps[done:]  # a remark, not a request ("thanks", "like a green screen"): left out
                remarks.append((clause, refusal))
        if adjust:
            _add_adjust(b, adjust)
        if not b.steps:
            raise remarks[0][1] if remarks else PlanRefused(_refusal(text))
        b.notes += [f"ignored '{clause}'" for clause, _ in remarks]
        return PlanText("; ".join(reasons + b.notes), json.dumps(b.workflow()), {"planner": "rules"})


def _corrected(text: str) -> str:
    """Words one or two typos away from a word the rules know are replaced by it ("brigher" -> "brighter")."""
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < 4 or word in _VOCAB_SET or word in _dictionary():
            return word
        close = difflib.get_close_matches(word, _VOCAB, n=1, cutoff=0.8)
        return close[0] if close and close[0][0] == word[0] else word

    return re.sub(r"[a-z]+", fix, text.lower().replace("color", "colour").replace("gray", "grey"))


@functools.cache
def _dictionary() -> frozenset[str]:
    """English words (the whole words of MiniLM's WordPiece vocabulary): never "corrected"."""
    if weights.missing(["minilm"]):
        return frozenset()
    lines = weights.path("minilm", "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 3)


_VOCAB_SET = _KEYWORDS | set("dark bright selected masked marked painted highlighted flowers flower sky grass trees table older younger smile".split())


def _clauses(text: str) -> list[str]:
    for phrase, token in _PROTECTED.items():
        text = text.replace(phrase, token)
    text = _MASKED.sub(" it ", text)
    text = re.sub(r",\s*(?=(?:about|around|roughly|approximately|by|to|say)\b)", " ", text)  # "smaller, about 70%" is one clause
    return [p.strip() for p in _SPLIT.split(text.strip()) if p and p.strip() and re.search(r"[a-z]", p)]


def _understood(clauses: list[str], has_mask: bool) -> list[tuple[str, _Target, dict[str, float] | None]]:
    """(clause, target, tone settings or None) of each clause that asks for something.

    A description of the photo ("it's too dark", "she looks pale") is no request, but it may say
    which way to go (the opposite of what it complains about) unless a request already does, and
    it says what a following "it" means ("the subject is tiny, scale it up")."""
    out: list[tuple[str, _Target, dict[str, float] | None]] = []
    implied: list[tuple[str, _Target, dict[str, float]]] = []
    last = _Target("image", "")
    for clause in clauses:
        if _KEEP.search(clause):
            continue
        target = _target(clause, has_mask)
        if target.kind == "image" and last.kind != "image" and re.search(r"\b(it|them|that|one)\b", clause):
            target = last
        if _DESCRIPTIVE.search(clause):
            settings = {k: -v for k, v in _adjustments(clause).items() if k != "saturation" or v > -1}
            if settings:
                implied.append((clause, target, settings))
            last = target
            continue
        last = _Target("image", "")  # after a request, "it" is the picture again
        out.append((clause, target, _adjustments(clause) or None))
    requested = {(t.kind, k) for _, t, settings in out if settings for k in settings}
    for clause, target, settings in implied:
        if left := {k: v for k, v in settings.items() if (target.kind, k) not in requested}:
            out.append((clause, target, left))
    return out


def _words(clause: str) -> set[str]:
    return set(re.findall(r"[a-z&]+", clause))


def _scale(clause: str) -> float:
    if m := _PERCENT.search(clause):
        return max(0.25, min(int(m.group(1)) / 20, 3.0))  # "by 20%" is one step
    return 2.0 if _STRONG.search(clause) else 0.5 if _WEAK.search(clause) else 1.0


def _adjustments(clause: str) -> dict[str, float]:
    words = _words(clause)
    out: dict[str, float] = {}
    for key, (more, less, nouns) in _ADJUST.items():
        if words & nouns and key not in ("warmth",) or key == "warmth" and words & {"temperature"}:
            sign = -1 if words & _DOWN and not words & _UP else 1 if words & _UP or words & more else -1 if words & less else 0
        else:
            sign = 1 if words & more else -1 if words & less else 0
        if key == "saturation" and words & _GREY:
            out[key] = -1.0
            continue
        if key == "sharpness" and words & _BLUR and not words & _BACKGROUND:
            sign = -1
        if key == "brightness" and (m := _TOO.search(clause)):
            sign = 1 if m.group(1) in ("dark", "underexposed", "dim") else -1  # "too dark", "less bright": the other way
        if sign:
            out[key] = round(sign * _AMOUNT[key] * _scale(clause), 3)
    if "gamma" in words and (m := re.search(r"\b(\d+(?:\.\d+)?)\b", clause)) and "%" not in clause:
        out["gamma"] = round(float(m.group(1)) - 1, 3)  # "set gamma to 1.2": the value itself
    if words & {"drain", "strip", "suck"} and words & {"colour", "colours"}:  # "drain the colour out"
        out["saturation"] = -1.0
    if "tone" in words and "down" in words and not out:  # "tone it down"
        out["saturation"] = -round(_AMOUNT["saturation"] * _scale(clause), 3)
    return out


def _other_edit(clause: str) -> bool:
    """The clause asks for more than a tone change (a style, a removal, a new canvas...)."""
    return bool(_REMOVE.search(clause) or _CUTOUT.search(clause) or _OUTPAINT.search(clause) or _RESIZE.search(clause)
                or find_style(clause) not in (None, "grey"))


def _target(clause: str, has_mask: bool) -> _Target:
    words = _words(clause)
    if words & _BACKGROUND or re.search(r"\beverything (?:else|but)\b|\bdepth of field\b|\bportrait mode\b", clause):
        for m in _DETERMINER.finditer(clause):  # "the wall behind the sofa": an object, not the background
            if m.group(1) not in _KEYWORDS and person_target(m.group(1)) is None and not _colour(m.group(1)):
                return _Target("object", f"the {m.group(1)}")
        person = next((w for w in re.findall(r"[a-z]+", clause) if person_target(w) == "person"), None)
        return _Target("background", person or "")
    if has_mask:
        return _Target("mask", "")
    for m in _DETERMINER.finditer(clause):
        first, second = m.group(1), m.group(2)
        phrase = f"{first} {second}" if second and person_target(second) == "face" else first
        kind = person_target(m.group(0).split()[0] + " " + phrase)
        if kind in ("person", "face"):
            return _Target(kind, m.group(0).split()[0] + " " + phrase)
        if first in _SUBJECT or first == "main" and second in _SUBJECT:
            return _Target("subject", "")
        if first not in _KEYWORDS and not _colour(first):
            return _Target("object", f"the {first}")
    for w in re.findall(r"[a-z]+", clause):
        if w in ("him", "her", "he", "she") or person_target(w) in ("person", "face") and w not in ("it", "this", "they", "them", "their"):
            return _Target(person_target(w) or "person", w)
    if words & _SUBJECT:
        return _Target("subject", "")
    return _Target("image", "")


def _colour(text: str) -> tuple[str, tuple[int, int, int]] | None:
    found = find_color(text)
    return None if found is None or found[0] in _NOT_COLOURS else found


def _add_adjust(b: _Builder, settings: dict[str, float], mask: str | None = None) -> None:
    bounded = {}
    for k, v in settings.items():
        low, high = _LIMITS.get(k, (-1.0, 1.0))
        bounded[k] = max(low, min(1 + v if k == "gamma" else v, high))
    mask = mask or ("init[mask]" if b.mask else None)
    b.current = b.add("ADJUST", {"image": b.current, "mask": mask, **bounded}, ("image",))["image"]


def _plan_clause(b: _Builder, clause: str, target: _Target, settings: dict[str, float] | None = None, *, guessed: bool = False) -> str:
    """Add the steps for one clause and say what they do; refuse what no rule matches."""
    words = _words(clause)
    if _OUTPAINT.search(clause) and not (_RESIZE.search(clause) and target.kind in ("subject", "person", "object")):
        return _outpaint(b, clause)
    removal = _REMOVE.search(clause)
    if target.kind == "background" and not (removal and not re.match(r"\s*(?:the\s+)?(?:background|backdrop|bg)\b", clause[removal.end():])):
        return _background(b, clause, target)
    if _CUTOUT.search(clause):
        refs = b.segment(target, ("mask", "image"))
        b.current = refs["image"]
        return f"cut out {target.phrase or 'the main subject' if not b.mask else 'the object in the mask'}"
    if removal:
        target = target if target.kind != "background" else _target(clause[removal.end():].split(" in ")[0], b.mask)
        if not b.mask and target.kind not in ("object", "person", "face"):
            raise PlanRefused(f"cannot tell what to remove in '{clause}': {MASK_HINT}")
        if not b.mask and not b.locates_anything:
            raise PlanRefused(f"cannot remove '{target.phrase}' without a model: {MASK_HINT}")
        mask = b.segment(target)["mask"]
        fast = b.add("FASTINPAINT", {"image": b.current, "mask": mask}, ("image", "score"))
        if "FLUX-INPAINT" in b.available:
            b.current = b.add("FLUX-INPAINT", {"image": b.current, "mask": mask, "preimage": fast["image"], "score": fast["score"]}, ("image",))["image"]
            return f"remove {target.phrase or 'the masked region'} (fast inpaint, diffusion refine)"
        b.current = fast["image"]
        return f"remove {target.phrase or 'the masked region'} (fast inpaint)"
    if _RESIZE.search(clause) and target.kind != "image" or _RESIZE.search(clause) and words & {"it", "subject"}:
        return _resize(b, clause, target)
    style = find_style(clause)
    settings = settings if settings is not None else _adjustments(clause)
    if target.kind in ("subject", "person", "face", "object") and (settings or style == "grey"):
        mask = b.segment(target)["mask"]
        _add_adjust(b, settings or {"saturation": -1.0}, mask)
        return f"{', '.join(f'{k} {v:+.2f}' for k, v in settings.items()) or 'grey'} on {target.phrase or 'the main subject'}"
    if style is not None or _STYLE_WORDS.search(clause) and words & {"painting", "drawing", "style"}:
        if style is None:
            raise PlanRefused(_refusal(clause))
        mask = b.segment(target)["mask"] if target.kind not in ("image", "mask") else "init[mask]" if b.mask else None
        caption = b.add("CMI-PRED", {"image": b.current, "left_ratio": None, "right_ratio": None, "top_ratio": None, "bottom_ratio": None}, ("caption",))["caption"]
        b.current = b.add("FLUX-STYLE", {"image": b.current, "mask": mask, "prompt": caption, "style": f"{style} style"}, ("image",))["image"]
        return f"caption, then {style} style" + (" inside the mask" if mask else "")
    colour = _colour(clause)
    if colour is not None and (_RECOLOR.search(clause) or target.kind != "image"):
        mask = b.segment(target if target.kind != "image" else _Target("subject", ""))["mask"]
        b.current = b.add("FLUX-RCM", {"image": b.current, "mask": mask, "prompt": f"make it {colour[0]}"}, ("image",))["image"]
        return f"recolour {target.phrase or 'the main subject' if not b.mask else 'the masked object'} to {colour[0]}"
    if not guessed and (found := intents.nearest(clause)):
        intent, score = found
        b.notes.append(f"read '{clause}' as '{intent}' (similarity {score:.2f})")
        extra = " ".join(w for w in (_STRONG.search(clause), _WEAK.search(clause)) if w for w in [w.group(0)])
        again = f"{intent} {extra}".strip()
        settings = _adjustments(again)
        if settings and target.kind in ("image", "mask"):
            _add_adjust(b, settings)
            return ", ".join(f"{k} {v:+.2f}" for k, v in settings.items())
        return _plan_clause(b, again, _target(again, b.mask), guessed=True)
    raise PlanRefused(_refusal(clause))


def _background(b: _Builder, clause: str, target: _Target) -> str:
    words = _words(clause)
    subject = _Target("person", target.phrase) if target.phrase else _Target("subject", "")
    if (_CUTOUT.search(clause) or _DROP_BACKGROUND.search(clause)) and _colour(clause) is None and not words & _BLUR:
        refs = b.segment(subject, ("mask", "image"))
        b.current = refs["image"]
        return f"cut out {target.phrase or 'the main subject'} (transparent background)"
    settings = _adjustments(clause)
    if words & _GREY:
        settings = {**settings, "saturation": -1.0}
    settings.pop("sharpness", None) if words & _BLUR else None
    if settings:
        _add_adjust(b, settings, b.background(subject))
        return ", ".join(f"{k} {v:+.2f}" for k, v in settings.items()) + " on the background"
    blur = bool(words & _BLUR) or "out of focus" in clause
    colour = _colour(clause)
    if not blur and colour is None:
        raise PlanRefused(f"cannot plan '{clause}' offline: name a colour or ask for a blur (described scenes need a model planner and the GPU background brick)")
    background = b.background(subject)
    what = "a soft blur" if blur else colour[0]
    b.current = b.add("FLUX-CBG", {"image": b.current, "mask": background, "prompt": f"change the background to {what}"}, ("image",))["image"]
    return f"segment {target.phrase or 'the subject'}, invert, background to {what}"


def _outpaint(b: _Builder, clause: str) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause)
    pct = _PERCENT.search(clause)
    factor = float(m.group(1)) if m else 1 + int(pct.group(1)) / 100 if pct else 1.25 if _WEAK.search(clause) else 1.5
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


def _resize(b: _Builder, clause: str, target: _Target) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:x|times)\b", clause)
    if m:
        ratio = float(m.group(1))
    elif re.search(r"twice as (big|large)|double", clause):
        ratio = 2.0
    elif re.search(r"half (the|its) size|halve", clause):
        ratio = 0.5
    else:
        ratio = 1.3 if re.search(r"\b(bigger|larger|enlarge|grow)\b", clause) else 0.7
        ratio = 1 + (ratio - 1) * _scale(clause)
    if m is None and (pct := _PERCENT.search(clause)):
        ratio = int(pct.group(1)) / 100
        ratio = ratio if re.search(r"\b(smaller|shrink|tinier|reduce)\b", clause) or ratio > 1 else 1 + ratio
    if ratio < 1 and re.search(r"\b(smaller|shrink|tinier)\b", clause) is None and m is None:
        ratio = 1 / ratio
    seg = b.segment(target if target.kind != "image" else _Target("subject", ""), ("mask", "image"))
    hole = b.add("FASTINPAINT", {"image": b.current, "mask": seg["mask"]}, ("image",))["image"]
    moved = b.add("RESIZE", {"mask": None, "image": seg["image"], "ratio": round(ratio, 3)}, ("image",))["image"]
    b.current = b.add("COMPOSE", {"mask1": None, "mask2": None, "image1": hole, "image2": moved}, ("image",))["image"]
    return f"cut out {target.phrase or 'the main object'}, remove it, scale it x{ratio:.2f} and paste it back"


def _refusal(clause: str, *, short: bool = False) -> str:
    text = (
        "the offline 'rules' planner understands brightness, contrast, saturation, warmth, sharpness and gamma, "
        "for the whole image, the background, the main subject, a person or a face; a style by name (grey, sepia, "
        "sketch, cartoon, watercolour); recolouring the main subject or a masked object to a named colour; removing "
        "a masked object; a background in a colour, blurred or transparent; outpainting by a ratio; making the main "
        "object bigger or smaller; and cutting it out. Other objects need a mask"
    )
    if short:
        return text
    return (
        f"cannot plan '{clause}' offline: {text}. For other edits use a model planner "
        "(--builder transformers, openai or sampling) or write the workflow yourself and call run_workflow"
    )
