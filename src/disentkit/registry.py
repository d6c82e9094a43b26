"""Name → entry registries shared by every disentkit package.

Models, quantizers, datasets and metrics are all looked up by name. A registry maps
snake_case names to entries; an unknown name fails with the list of known ones.

Example:
    >>> from disentkit.registry import Registry
    >>> colours = Registry("colour")
    >>> @colours.register("red")
    ... def red():
    ...     return "#f00"
    >>> colours["red"]()
    '#f00'
    >>> colours["blue"]
    Traceback (most recent call last):
    ...
    disentkit.registry.UnknownNameError: unknown colour 'blue'; known colours: red
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """Raised for a name that a registry does not hold; lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """A read-mostly mapping from registry names to entries.

    Args:
        kind: what the entries are ("metric", "model", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a name can be registered once."""
        if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
            raise ValueError(f"{self.kind} names are snake_case identifiers; received {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            pass
        known = ", ".join(sorted(self._entries)) or "(none)"
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}{self.suggestion(name)}; known {self.kind}s: {known}"
        )

    def suggestion(self, name: object) -> str:
        """``" (did you mean 'x'?)"`` for the registered name closest to ``name``, or ``""``.

        Example:
            >>> shapes = Registry("shape")
            >>> _ = shapes.add("square", 4)
            >>> shapes.suggestion("sqare"), shapes.suggestion("circle")
            (" (did you mean 'square'?)", '')
        """
        close = difflib.get_close_matches(str(name), list(self._entries), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"
