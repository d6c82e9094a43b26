"""The model catalogue: every registered model, its description and its options.

What ``disentkit models`` prints. A model's options are the fields of its config
dataclass (``MODELS[name].config_cls``): name, type, default and the comment written beside
the field in the source (the project's convention: ``n_values: int = 10  # values per
latent's scalar codebook``), looked up through the class's bases so inherited fields keep
their documentation.

Example:
    >>> entry = describe_model("qlae")
    >>> entry["description"]
    'Quantized-latent autoencoder: a learnable scalar codebook per latent'
    >>> option = next(o for o in entry["options"] if o["name"] == "n_values")
    >>> option["type"], option["default"], option["doc"]
    ('int', 10, "values per latent's scalar codebook")
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
import typing
from functools import cache
from typing import Any

from disentkit.models._base import MODELS

__all__ = ["describe_model", "list_models"]


def list_models() -> list[dict[str, str]]:
    """Every registered model: ``name``, ``description``, ``reference``, sorted by name."""
    return [{"name": name, "description": info.description, "reference": info.reference}
            for name, info in sorted(MODELS.items())]


def describe_model(name: str) -> dict[str, Any]:
    """A registered model with its options.

    Returns:
        ``{"name", "description", "reference", "vectorizable", "options": [{"name", "type",
        "default", "doc"}, ...]}`` in field order; a default that is a tuple becomes a list.

    Raises:
        KeyError: unknown name (the message lists the known models).
    """
    info = MODELS[name]
    hints = typing.get_type_hints(info.config_cls)
    options = []
    for f in dataclasses.fields(info.config_cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        options.append({
            "name": f.name,
            "type": _type_name(hints.get(f.name, Any)),
            "default": list(default) if isinstance(default, tuple) else default,
            "doc": _field_docs(info.config_cls).get(f.name, ""),
        })
    refusal = getattr(info.cls, "vectorize_refusal", "")
    return {"name": name, "description": info.description, "reference": info.reference,
            "vectorizable": refusal is None, "options": options}


def _type_name(tp: Any) -> str:
    text = tp.__name__ if isinstance(tp, type) else str(tp)
    return text.replace("typing.", "").replace("NoneType", "None")


@cache
def _field_docs(cls: type) -> dict[str, str]:
    """``field -> comment`` from the sources of ``cls`` and its bases (nearest wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        docs.update(_comments(source))
    return docs


def _comments(source: str) -> dict[str, str]:
    """The trailing comment of each top-level ``name: type = default`` line of a class."""
    out: dict[str, str] = {}
    field_name = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and field_name is None:
            field_name = tok.string
        elif tok.type == tokenize.COMMENT and field_name is not None:
            out[field_name] = tok.string.lstrip("#").strip()
        if tok.type in (tokenize.NEWLINE, tokenize.NL):
            field_name = None
    return out
