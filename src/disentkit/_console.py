"""Terminal output shared by the command line and the study runner: plain stdout/stderr
consoles (no syntax highlighting) and one-paragraph red error messages."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

__all__ = ["error", "stderr", "stdout"]


def stdout() -> Console:
    """A console on stdout."""
    return Console(highlight=False)


def stderr() -> Console:
    """A console on stderr."""
    return Console(stderr=True, highlight=False)


def error(message: str, hint: str = "") -> None:
    """Print ``error: message`` in red on stderr, with an optional dim hint."""
    text = Text.assemble(("error: ", "bold red"), (message, "red"), (hint, "dim"))
    stderr().print(text, soft_wrap=True)
