"""A tiny name -> object registry: the one mechanism behind every `get_…(name)` in sdar_core.algos.

Variants (policy losses, advantage estimators, KL estimators, distillation losses, aggregation
modes, algorithm presets) are chosen by name from a `Registry` instead of if/elif chains, so a new
variant is one function and one `@registry.register("name")` line. Looking up an unknown name raises
`UnknownNameError` whose message lists every valid name.
"""

from collections.abc import Callable
from typing import Generic, TypeVar

from sdar_core.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind (e.g. kind="policy loss").

    `kind` is only used in error messages: "unknown policy loss 'x': valid names are a, b, c".
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under `name` and returns it unchanged.

        Stack several decorators to register aliases.
        """

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Registers `obj` under `name`; a name can be registered only once."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._items:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered: pick another name for the new one"
            )
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered as `name`; UnknownNameError listing the valid names otherwise."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            valid = ", ".join(self.names())
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}: valid names are {valid}"
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def in_order(self) -> list[str]:
        """The registered names in the order they were registered."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, names={self.names()})"
