"""Tests for compress.hyperparameters.inherits_hyperparameters."""

from __future__ import annotations

import inspect

import pytest

from compress.hyperparameters import inherits_hyperparameters


class _Base:
    def __init__(self, *, a: int = 1, b: int = 2, c: int = 3) -> None:
        self.values = {"a": a, "b": b, "c": c}


def _keywords(cls: type) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(cls.__init__).parameters.values() if p.kind == p.KEYWORD_ONLY]


def test_new_keywords_follow_the_base_keywords():
    @inherits_hyperparameters
    class Child(_Base):
        def __init__(self, *, d: int = 4, **options) -> None:
            super().__init__(**options)

    assert _keywords(Child) == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]


def test_redeclared_keyword_takes_the_child_default_and_places_the_block():
    @inherits_hyperparameters
    class Child(_Base):
        def __init__(self, *, x: int = 0, b: int = 20, **options) -> None:
            super().__init__(b=b, **options)

    assert _keywords(Child) == [("a", 1), ("x", 0), ("b", 20), ("c", 3)]
    assert Child().values == {"a": 1, "b": 20, "c": 3}


def test_unknown_keyword_is_still_a_type_error():
    @inherits_hyperparameters
    class Child(_Base):
        def __init__(self, **options) -> None:
            super().__init__(**options)

    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Child(z=1)


def test_init_without_var_keyword_is_rejected():
    class Child(_Base):
        def __init__(self, *, d: int = 4) -> None:
            super().__init__()

    with pytest.raises(TypeError, match="must end with \\*\\*options"):
        inherits_hyperparameters(Child)


def test_class_without_own_init_is_rejected():
    class Child(_Base):
        pass

    with pytest.raises(TypeError, match="defines no __init__"):
        inherits_hyperparameters(Child)
