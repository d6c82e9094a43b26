"""A griffe extension for the API reference: read our docstrings as they are written.

Three habits of the sources that griffe's Google-style parser does not know:

- the section heading ``Example:``: griffe parses only ``Examples:`` as an examples section
  and renders the singular as an admonition, in which doctest lines read as Markdown
  quotes. The heading is renamed, so doctests show as code.
- Sphinx roles (``:func:`evaluate```, ``:mod:`disentkit.study.overrides```,
  ``:class:`~disentkit.metrics.MIGResult```): each becomes an *optional* cross-reference,
  the name resolved in the object's scope as Python would. It links where the target has
  a page in the reference and reads as code where it has none (a private module), so the
  strict build does not fail on a reference to something deliberately left out.
- ``#:`` comment lines just above a module or class attribute: its documentation (the
  Sphinx convention); they become the attribute's docstring when it has none.
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


def _comment_docstring(obj: griffe.Object) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above an attribute, as its docstring."""
    if obj.lineno is None:
        return None
    lines = obj.module.lines
    found: list[str] = []
    row = obj.lineno - 2  # the line above the assignment (``lineno`` counts from 1)
    while row >= 0 and lines[row].lstrip().startswith("#:"):
        found.insert(0, lines[row].lstrip()[2:].strip())
        row -= 1
    if not found:
        return None
    return griffe.Docstring("\n".join(found), lineno=row + 2, parent=obj)


class DocstringHabits(griffe.Extension):
    """Rename ``Example:`` headings, turn Sphinx roles into optional cross-references and
    read ``#:`` comments as attribute docstrings."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.is_attribute and obj.docstring is None:
                obj.docstring = _comment_docstring(obj)
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
