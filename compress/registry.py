"""A tiny name -> factory registry used for models, methods, regularizers and stages."""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps kebab-case names to factories; duplicate names are an error.

    ``Registry(kind, [ClassA, ClassB])`` registers classes under their ``name`` attribute (the explicit
    list a package keeps in its ``__init__``); ``add(cls)`` registers one more (a plug-in);
    ``register(name)`` is the decorator form for factories without a ``name``.
    """

    def __init__(self, kind: str, entries: Iterable[Any] = ()) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Any) -> Any:
        """Register ``entry`` under ``entry.name``; returns it (usable as a class decorator)."""
        return self.register(entry.name)(entry)

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}") from None

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._factories
