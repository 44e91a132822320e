"""How the offline planner reads an instruction: typos, clauses, what each clause is about, and tone amounts.

Typos are corrected against the words the rules know (never a real English word: MiniLM's
vocabulary is the dictionary); the text is split into clauses; each clause gets a target (the
whole image, the user's mask, the background, the main subject, a person, a face or another
object) and the tone settings its words ask for. Descriptions of the photo ("it's too dark")
are read as the opposite request. Everything here is deterministic.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from bricks.cpu.weights import Weights
from bricks.cpu.colors import find_color
from bricks.cpu.referring import target as person_target
from bricks.cpu.style import STYLES, find_style

PROTECTED = {  # phrases kept whole (not split on their "and", not read as "scale")
    "grey scale": "greyscale", "black and white": "b&w", "black-and-white": "b&w", "cut-out": "cutout",
    "left and right": "left & right", "top and bottom": "top & bottom",
}
SPLIT = re.compile(r"\s*(?:[;,!?]|:(?!\d)|\.(?!\d)|\band then\b|\bthen\b|\band also\b|\band\b|\bbut\b|\bplus\b|\bwhile\b|\bso that\b|\bso\b)\s*")
STRONG = re.compile(r"\b(much|a lot|lots|very|way|far|significantly|strongly|really|heavily|super|extremely|way more)\b")
WEAK = re.compile(r"\b(slightly|a little|a bit|a touch|somewhat|subtly|a tad|a little bit|gently|mildly|bit)\b")
TOO = re.compile(r"\b(?:too|overly|less|not so|not as)\s+(dark|bright|underexposed|overexposed|dim)\b")
PERCENT = re.compile(r"(\d{1,3})\s*%")

UP = {"nudge", "more", "increase", "boost", "raise", "higher", "stronger", "add", "pump", "crank", "bump", "up", "enhance", "intensify", "deepen", "richer", "amp", "push", "heighten", "lift"}
DOWN = {"ease", "less", "reduce", "lower", "decrease", "softer", "weaker", "tone", "mute", "drop", "cut", "minus", "fewer", "soften", "down", "dial", "tame", "diminish"}
# setting -> (words that mean "more of it" alone, words that mean "less of it" alone, nouns taking UP/DOWN)
ADJUST: dict[str, tuple[set[str], set[str], set[str]]] = {
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
    "warmth": ({"warmer", "warm", "golden"}, {"cooler", "cool", "colder", "cold", "icy", "chilly", "clinical"}, {"temperature", "warmth"}),
    "sharpness": (
        {"sharpen", "sharper", "crisper", "crisp", "clearer", "defined", "sharp", "deblur", "unblur", "detailed"},
        {"soften", "softer", "blurry", "smooth", "smoother", "dreamy", "hazy"},
        {"sharpness", "detail", "details", "clarity", "definition"},
    ),
    "gamma": (set(), set(), {"gamma", "midtones"}),
}
AMOUNT = {"brightness": 0.12, "contrast": 0.2, "saturation": 0.3, "warmth": 0.3, "sharpness": 0.6, "gamma": 0.25}
LIMITS = {"sharpness": (-1.0, 2.0), "gamma": (0.2, 5.0)}
GREY = {"b&w", "grey", "gray", "greyscale", "grayscale", "monochrome", "colourless"}

BACKGROUND = {"background", "backdrop", "behind", "surroundings", "bg", "except", "bokeh"}
BLUR = {"blur", "blurred", "blurry", "bokeh", "defocus", "defocused", "unfocused", "focus", "blurring", "depth"}
REMOVE = re.compile(r"\b(remove|erase|delete|get rid of|take out|take away|eliminate|clear|wipe|inpaint|disappear|vanish)\b")
CUTOUT = re.compile(r"\b(cut\s*out|cutout|cut (?:\w+ ){0,3}out|isolate|extract|segment|select|mask out|separate|knock out)\b")
DROP_BACKGROUND = re.compile(r"\b(remove|delete|erase|drop|get rid of|knock out|take out|transparent|no|kill|ditch|lose|nuke|strip)\b")
OUTPAINT = re.compile(
    r"\b(outpaint\w*|uncrop|zoom(?:ed)? out|expand|extend\w*|widen|wider (?:shot|view|frame)|enlarge the (?:canvas|frame|picture|image|photo)"
    r"|(?:more|extra) (?:space|room)|bigger canvas|larger canvas|pull back|show more)\b"
)
RESIZE = re.compile(r"\b(bigger|larger|smaller|tinier|enlarge|shrink|scale|twice as (?:big|large)|half (?:the|its) size|grow|reduce the size)\b")
ADDITION = re.compile(r"^\s*(?:please\s+)?(add|put|insert|place|give|draw|write|attach|include)\b")
"""A clause that brings something new into the picture ('add a red scarf to the cat'): not a recolour of what is there."""
RECOLOR = re.compile(r"\b(make|turn|paint|colou?r|change|recolou?r|dye|tint|repaint)\b")
KEEP = re.compile(r"^(keep|leave|preserve|don't touch|do not touch)\b|\b(stands?|pops?)\s+out$|^(please|thanks|thank you|thank u|thx|ty|cheers|plz|pls|it|this)$")
MASKED = re.compile(r"\b(?:what|that|which)?\s*(?:i've|i have|i)\s+(?:masked|painted|selected|marked|highlighted)(?:\s+it)?\b")
DESCRIPTIVE = re.compile(
    r"^(?:(?:it|this|that|everything|the \w+|\w+)(?:'s| is| are| looks?| seems?| feels?| has| have)\b|(?:its|it's|too|way too|kinda|looks?|feels?|seems?)\b)"
)
EDIT_VERB = re.compile(
    r"\b(add|put|insert|place|make|turn|change|replace|swap|write|draw|remove|delete|erase|move|give|transform|convert|create"
    r"|generate|paint|recolou?r|dye|rotate|flip|crop|age|animate)\b"
)

SUBJECT = {"subject", "foreground", "object"}
GENERIC = (  # words after "the"/"his"/... that name no object
    set("image photo picture pic shot whole entire overall colours colour tones tone lighting light shadows highlights canvas frame "
        "left right top bottom sides side edges edge corners style effect main thing photograph scene exposure contrast saturation "
        "brightness warmth sharpness gamma midtones detail details clarity temperature vibrance mask masked area region selection "
        "part parts one rest space room it this size version look feel mood subject foreground object background backdrop "
        "soft dreamy nice subtle strong gentle plain solid pure new old different same current overall little bit touch lot".split())
)
DETERMINER = re.compile(r"\b(?:the|his|her|their|its|that|those|these|my)\s+([a-z]{3,})(?:\s+([a-z]+))?")
# CSS colour names that are more often things than colours in an instruction
NOT_COLOURS = {"snow", "chocolate", "tomato", "salmon", "orchid", "linen", "wheat", "peru", "bisque", "moccasin", "honeydew", "seashell", "thistle", "lime", "tan"}

VOCAB = sorted(
    {w for s in ADJUST.values() for group in s for w in group}
    | UP | DOWN | GREY | BACKGROUND | BLUR | SUBJECT | GENERIC
    | {alias for name, (_, aliases) in STYLES.items() for alias in (name, *aliases) if " " not in alias}
    | set("remove erase delete eliminate cutout isolate extract segment select outpaint uncrop zoom expand extend widen bigger larger "
          "smaller tinier enlarge shrink twice half recolour recolor paint change white black blue green yellow orange purple pink "
          "brown red please could would make turn person people woman man face watercolour watercolor cartoon sketch pencil sepia "
          "vintage comic drawing saturation colourful behind".split())
)
KEYWORDS = set(VOCAB)
# never "corrected" into a keyword, whether or not the dictionary is there
KNOWN = KEYWORDS | set("dark bright selected masked marked painted highlighted flowers flower sky grass trees table older younger smile".split())


@dataclass(frozen=True)
class Target:
    kind: str  # image, mask, background, subject, person, face, object
    phrase: str


def corrected(text: str, weights: Weights) -> str:
    """Words one or two typos away from a word the rules know are replaced by it ("brigher" ->
    "brighter"), unless MiniLM's vocabulary in `weights` knows them as words."""
    english = dictionary(weights)

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < 4 or word in KNOWN or word in english:
            return word
        close = difflib.get_close_matches(word, VOCAB, n=1, cutoff=0.8)
        return close[0] if close and close[0][0] == word[0] else word

    return re.sub(r"[a-z]+", fix, text.lower().replace("color", "colour").replace("gray", "grey"))


@functools.cache
def dictionary(weights: Weights) -> frozenset[str]:
    """English words (the whole words of MiniLM's WordPiece vocabulary): never "corrected"."""
    if weights.missing(["minilm"]):
        return frozenset()
    lines = weights.path("minilm", "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 3)


def clauses(text: str) -> list[str]:
    for phrase, token in PROTECTED.items():
        text = text.replace(phrase, token)
    text = MASKED.sub(" it ", text)
    text = re.sub(r",\s*(?=(?:about|around|roughly|approximately|by|to|say)\b)", " ", text)  # "smaller, about 70%" is one clause
    return [p.strip() for p in SPLIT.split(text.strip()) if p and p.strip() and re.search(r"[a-z]", p)]


def understood(parts: list[str], has_mask: bool) -> list[tuple[str, Target, dict[str, float] | None]]:
    """(clause, target, tone settings or None) of each clause that asks for something.

    A description of the photo ("it's too dark", "she looks pale") is no request, but it may say
    which way to go (the opposite of what it complains about) unless a request already does, and
    it says what a following "it" means ("the subject is tiny, scale it up")."""
    out: list[tuple[str, Target, dict[str, float] | None]] = []
    implied: list[tuple[str, Target, dict[str, float]]] = []
    last = Target("image", "")
    for clause in parts:
        if KEEP.search(clause):
            continue
        target = target_of(clause, has_mask)
        if target.kind == "image" and last.kind != "image" and re.search(r"\b(it|them|that|one)\b", clause):
            target = last
        if DESCRIPTIVE.search(clause):
            settings = {k: -v for k, v in adjustments(clause, describing=True).items() if k != "saturation" or v > -1}
            if settings:
                implied.append((clause, target, settings))
            last = target
            continue
        last = Target("image", "")  # after a request, "it" is the picture again
        out.append((clause, target, adjustments(clause) or None))
    requested = {(t.kind, k) for _, t, settings in out if settings for k in settings}
    for clause, target, settings in implied:
        if left := {k: v for k, v in settings.items() if (target.kind, k) not in requested}:
            out.append((clause, target, left))
    return out


def words_of(clause: str) -> set[str]:
    return set(re.findall(r"[a-z&]+", clause))


def scale(clause: str) -> float:
    if m := PERCENT.search(clause):
        return max(0.25, min(int(m.group(1)) / 20, 3.0))  # "by 20%" is one step
    return 2.0 if STRONG.search(clause) else 0.5 if WEAK.search(clause) else 1.0


def adjustments(clause: str, *, describing: bool = False) -> dict[str, float]:
    """Tone settings the clause asks for; `describing`: the clause describes the photo ("it's too
    dark"), and the settings name its state (the caller turns them round)."""
    words = words_of(clause)
    out: dict[str, float] = {}
    for key, (more, less, nouns) in ADJUST.items():
        if words & nouns:  # "boost the saturation", "reduce the warmth"
            sign = -1 if words & DOWN and not words & UP else 1 if words & UP or words & more else -1 if words & less else 0
        else:
            sign = 1 if words & more else -1 if words & less else 0
        if key == "saturation" and words & GREY:
            out[key] = -1.0
            continue
        if key == "sharpness" and words & BLUR and not words & BACKGROUND:
            sign = -1
        if key == "brightness" and (m := TOO.search(clause)):
            sign = 1 if m.group(1) in ("dark", "underexposed", "dim") else -1  # "too dark", "less bright": the other way
            sign = -sign if describing else sign  # a description names the state, not the fix
        if sign:
            out[key] = round(sign * AMOUNT[key] * scale(clause), 3)
    if "gamma" in words and (m := re.search(r"\b(\d+(?:\.\d+)?)\b", clause)) and "%" not in clause:
        out["gamma"] = round(float(m.group(1)) - 1, 3)  # "set gamma to 1.2": the value itself
    if words & {"drain", "strip", "suck"} and words & {"colour", "colours"}:  # "drain the colour out"
        out["saturation"] = -1.0
    if "tone" in words and "down" in words and not out:  # "tone it down"
        out["saturation"] = -round(AMOUNT["saturation"] * scale(clause), 3)
    return out


def other_edit(clause: str) -> bool:
    """The clause asks for more than a tone change (a style, a removal, a new canvas...)."""
    return bool(REMOVE.search(clause) or CUTOUT.search(clause) or OUTPAINT.search(clause) or RESIZE.search(clause)
                or find_style(clause) not in (None, "grey"))


def target_of(clause: str, has_mask: bool) -> Target:
    """What the clause is about."""
    words = words_of(clause)
    if words & BACKGROUND or re.search(r"\beverything (?:else|but)\b|\bdepth of field\b|\bportrait mode\b", clause):
        for m in DETERMINER.finditer(clause):  # "the wall behind the sofa": an object, not the background
            if m.group(1) not in KEYWORDS and person_target(m.group(1)) is None and not colour(m.group(1)):
                return Target("object", f"the {m.group(1)}")
        person = next((w for w in re.findall(r"[a-z]+", clause) if person_target(w) == "person"), None)
        return Target("background", person or "")
    if has_mask:
        return Target("mask", "")
    for m in DETERMINER.finditer(clause):
        first, second = m.group(1), m.group(2)
        phrase = m.group(0).split()[0] + " " + (f"{first} {second}" if second and person_target(second) == "face" else first)
        if (kind := person_target(phrase)) in ("person", "face"):
            return Target(kind, phrase)
        if first in SUBJECT or first == "main" and second in SUBJECT:
            return Target("subject", "")
        if first not in KEYWORDS and not colour(first):
            return Target("object", f"the {first}")
    for w in re.findall(r"[a-z]+", clause):
        if w not in ("they", "them", "their") and (kind := person_target(w)) in ("person", "face"):  # "them": the colours
            return Target(kind, w)
    if words & SUBJECT:
        return Target("subject", "")
    return Target("image", "")


def colour(text: str) -> tuple[str, tuple[int, int, int]] | None:
    found = find_color(text)
    return None if found is None or found[0] in NOT_COLOURS else found
