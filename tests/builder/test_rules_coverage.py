"""The offline planner against what people type: tests/builder/data/rules_instructions.json."""

import pytest

from bench.planner_coverage import evaluate
from builder.planners import intents
from tests.conftest import trained


def test_paraphrases_and_typos_get_an_acceptable_plan_and_out_of_scope_is_refused(registry):
    coverage = evaluate(registry)
    assert coverage.in_scope >= 150 and coverage.out_of_scope >= 40
    assert coverage.planned / coverage.in_scope >= 0.9, "\n".join(coverage.misses)
    assert coverage.refused == coverage.out_of_scope, "\n".join(m for m in coverage.misses if m.startswith("out"))


@pytest.mark.parametrize(
    "clause, intent",
    [("the photo is way too bright", "darker"), ("bring out the details", "sharpen"), ("make it snow", None),
     ("add a hat on the cat", None), ("what is in this picture", None)],
)
def test_the_sentence_embedder_maps_paraphrases_to_intents_and_nothing_else(clause, intent):
    found = intents.nearest(clause, trained())
    assert (found and found[0]) == intent or found is None and intent is None
