"""Fuzz the recipe loader: random bytes and random YAML-shaped structures either parse or raise UserError."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.recipe import parse_recipe

STAGE_NAMES = st.sampled_from(["train-sparse", "prune", "quantize", "export", "compile", "report", "bogus"])
KEYS = st.sampled_from(["epochs", "lr", "method", "sparsity-ratio", "block", "pattern", "target", "params", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
STEPS = st.fixed_dictionaries({"use": STAGE_NAMES}, optional={"with": st.dictionaries(KEYS, VALUES, max_size=4)})
DOCUMENTS = st.one_of(
    st.fixed_dictionaries({"stages": st.lists(STEPS | VALUES, max_size=4)}, optional={"name": SCALARS}),
    VALUES,
)


def _parse_or_reject(text: str) -> None:
    try:
        steps = parse_recipe(text)
    except UserError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert steps, "an accepted recipe has at least one stage"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_recipe_loader_rejects_random_bytes_with_our_error(data):
    _parse_or_reject(data.decode("utf-8", errors="replace"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_recipe_loader_rejects_random_structures_with_our_error(document):
    _parse_or_reject(yaml.safe_dump(document))
