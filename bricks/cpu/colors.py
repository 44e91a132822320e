"""Find a colour named in free text ("make it dark red", "a #3366cc car") for the CPU edit bricks.

Names are the 148 CSS colour names Pillow knows; multi-word names may be written apart
("light sea green" -> lightseagreen). The first colour in the text wins, and at one place
the longest name wins, so "navy blue" is navy and "dark blue" is darkblue.
"""

from __future__ import annotations

import re

from PIL import ImageColor

_WORD = re.compile(r"#[0-9a-f]{6}\b|#[0-9a-f]{3}\b|[a-z]+")
_ALIASES = {"golden": "gold"}  # adjectives planners write that CSS lacks
_LONGEST_NAME = 3  # words: "light sea green", "medium violet red"

HINT = "a CSS colour name such as red, navy, darkgreen or lightblue, or a hex code such as #3366cc"


def find_color(text: str) -> tuple[str, tuple[int, int, int]] | None:
    """The first colour named in `text` as (name, (r, g, b)), or None when it names none."""
    words = _WORD.findall(text.lower())
    for i, word in enumerate(words):
        if word.startswith("#"):
            return word, _rgb(word)
        for n in range(min(_LONGEST_NAME, len(words) - i), 0, -1):
            name = "".join(words[i : i + n])
            name = _ALIASES.get(name, name)
            if name in ImageColor.colormap:
                return name, _rgb(name)
    return None


def _rgb(spec: str) -> tuple[int, int, int]:
    r, g, b = ImageColor.getrgb(spec)[:3]
    return r, g, b
