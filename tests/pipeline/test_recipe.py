import pytest

from pipeline.errors import UserError
from pipeline.recipe import DEFAULT_RECIPE, built_in_recipes, load_recipe, parse_recipe


def test_default_recipe_lists_every_stage_in_order():
    steps = load_recipe(None)
    assert [s.use for s in steps] == ["train-sparse", "prune", "quantize", "export", "compile", "report"]
    assert DEFAULT_RECIPE.exists()


def test_parse_recipe_reads_stage_options():
    steps = parse_recipe("stages:\n  - use: prune\n    with: {sparsity-ratio: 0.75, pattern: block, block: [8, 1]}\n")
    assert steps[0].config.sparsity_ratio == 0.75
    assert steps[0].config.block == (8, 1)


@pytest.mark.parametrize(
    "text,message",
    [
        ("stages: []", "non-empty list"),
        ("stage: [{use: prune}]", "unknown key 'stage'"),
        ("stages: [{use: shrink}]", "unknown stage 'shrink'"),
        ("stages: [{use: prune, options: {}}]", "unknown key 'options'"),
        ("stages: [{use: prune, with: {epochs: lots}}]", "expected an integer"),
        ("stages: [{use: prune, with: [1, 2]}]", "must be a mapping"),
        ("- just a list", "must be a mapping"),
        ("stages: [{use: prune\n", "invalid YAML"),
    ],
)
def test_parse_recipe_rejects_bad_recipes_with_clear_message(text, message):
    with pytest.raises(UserError, match=message):
        parse_recipe(text)


def test_a_built_in_recipe_is_read_by_its_name_when_no_such_file_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"default", "int8"} <= set(built_in_recipes())
    steps = load_recipe("int8")
    assert [step.use for step in steps][2] == "quantize" and steps[2].config.method == "int8"


def test_an_unknown_recipe_name_is_one_error_listing_the_built_in_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no built-in recipe of that name.*int8"):
        load_recipe("int9")
