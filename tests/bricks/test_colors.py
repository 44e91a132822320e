import pytest

from bricks.cpu.colors import find_color


@pytest.mark.parametrize(
    ("text", "name", "rgb"),
    [
        ("make it red", "red", (255, 0, 0)),
        ("a dark blue car", "darkblue", (0, 0, 139)),
        ("paint the walls light sea green", "lightseagreen", (32, 178, 170)),
        ("navy blue", "navy", (0, 0, 128)),  # the longest CSS name that exists wins
        ("Turn it GREY", "grey", (128, 128, 128)),
        ("a golden crown", "gold", (255, 215, 0)),
        ("red and blue stripes", "red", (255, 0, 0)),  # the first colour named
        ("use #3366cc", "#3366cc", (51, 102, 204)),
        ("#F00 please", "#f00", (255, 0, 0)),
    ],
)
def test_finds_the_named_colour(text, name, rgb):
    assert find_color(text) == (name, rgb)


@pytest.mark.parametrize("text", ["made of wood", "redo the shading", "bluish", "", "#12345g"])
def test_no_colour_named(text):
    assert find_color(text) is None
