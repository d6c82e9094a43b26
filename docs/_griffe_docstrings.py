"""A griffe extension for the API reference: read our docstrings as they are written.

Two habits of the docstrings that griffe's Google-style parser does not know:

- the section heading ``Example:``: griffe parses only ``Examples:`` as an examples section
  and renders the singular as an admonition, in which doctest lines read as Markdown
  quotes. The heading is renamed, so doctests show as code.
- Sphinx roles (``:func:`evaluate```, ``:mod:`disentkit.study.overrides```,
  ``:class:`~disentkit.metrics.MIGResult```): each becomes an *optional* cross-reference,
  the name resolved in the object's scope as Python would. It links where the target has
  a page in the reference and reads as code where it has none (a private module), so the
  strict build does not fail on a reference to something deliberately left out.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`(~?)([\w.]+)`")


def _target(obj: griffe.Object, name: str) -> str:
    """The full path ``name`` means inside ``obj``'s docstring (unchanged if unknown)."""
    head, _, rest = name.partition(".")
    try:
        full = obj.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
        return name
    return f"{full}.{rest}" if rest else full


def _rewrite(obj: griffe.Object, text: str) -> str:
    def ref(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        title = name.rsplit(".", 1)[-1] if short else name
        identifier = html.escape(_target(obj, name), quote=True)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(ref, _EXAMPLE_HEADING.sub(r"\1Examples:", text))


class DocstringHabits(griffe.Extension):
    """Rename ``Example:`` headings and turn Sphinx roles into optional cross-references."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
