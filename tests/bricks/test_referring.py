"""RES on the CPU: people, faces and the main subject are found; anything else is refused, never guessed."""

import numpy as np
import pytest

from bricks import InvalidInput
from bricks.cpu.referring import target
from tests.conftest import photo


@pytest.mark.parametrize(
    "phrase, kind",
    [("her face", "face"), ("his face", "face"), ("the woman", "person"), ("him", "person"), ("the people", "person"),
     ("the main subject", "subject"), ("the foreground", "subject"), ("", "subject"),
     ("the spoon", None), ("the cat", None), ("her shirt", None), ("the man on the left", None)],
)
def test_phrases_the_cpu_can_ground(phrase, kind):
    assert target(phrase) == kind


def test_the_woman_is_her_person_mask(run):
    out = run("RES", image=photo("astronaut"), prompt="the woman")
    mask = out["mask"] > 0
    assert mask[100:140, 200:240].all()  # her face
    assert mask[300:400, 60:200].mean() > 0.95  # her suit
    assert not mask[:60, 420:].any()  # the wall top right
    assert out["image"].shape == (512, 512, 4)


def test_her_face_is_an_ellipse_on_her_face(run):
    mask = run("segment_by_text", image=photo("astronaut"), prompt="her face")["mask"] > 0
    assert mask[100:150, 200:250].all()
    assert 0.02 < mask.mean() < 0.08  # the face, not the whole person
    assert not mask[300:].any()


def test_the_subject_is_the_salient_object(run):
    image = photo("coffee")
    assert np.array_equal(run("RES", image=image, prompt="the main subject")["mask"], run("SOS", image=image)["mask"])


@pytest.mark.parametrize("phrase", ["the spoon", "the saucer", "the cat's collar"])
def test_other_objects_are_refused_with_how_to_pass_a_mask(run, phrase):
    with pytest.raises(InvalidInput, match=r"`prompt`.*only people, faces and the main subject.*mask"):
        run("RES", image=photo("coffee"), prompt=phrase)


def test_no_person_in_the_picture_is_refused(run):
    with pytest.raises(InvalidInput, match=r"`prompt`.*no person was found"):
        run("RES", image=photo("coffee"), prompt="the man")
