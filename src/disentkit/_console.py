"""Terminal output shared by the command-line modules: plain stdout/stderr consoles and
one-paragraph red error messages."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _error(message: str, hint: str = "") -> None:
    """Print ``error: message`` in red on stderr, with an optional dim hint."""
    text = Text.assemble(("error: ", "bold red"), (message, "red"), (hint, "dim"))
    _stderr().print(text, soft_wrap=True)
