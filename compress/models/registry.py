"""Model registry: each entry is a factory plus the input shape (C, H, W) it expects."""

from __future__ import annotations

from torch import nn

from compress.registry import Registry

MODELS: Registry[nn.Module] = Registry("architecture")
_INPUT_SHAPES: dict[str, tuple[int, ...]] = {}


def register_model(name: str, *, input_shape: tuple[int, ...]):
    """Register a model factory under ``name`` with its default per-sample input shape."""

    def decorator(factory):
        MODELS.register(name)(factory)
        _INPUT_SHAPES[name] = tuple(input_shape)
        return factory

    return decorator


def create_model(name: str, **kwargs) -> nn.Module:
    return MODELS.create(name, **kwargs)


def list_models() -> list[str]:
    return MODELS.names()


def model_input_shape(name: str) -> tuple[int, ...]:
    MODELS.get(name)
    return _INPUT_SHAPES[name]
