"""Recipes: published settings shipped as named, versioned run configs.

A recipe is the run config of one (model, dataset) cell of a published table, stored as a
commented YAML file in this package: ``<family>/<model>/<dataset>.yaml``, e.g.
``qlae2023/qlae/shapes3d`` (Hsu et al., "Disentanglement via Latent Quantization",
NeurIPS 2023). ``<model>`` is a model registry name and ``<dataset>`` a dataset registry
name. Each file starts with comments citing where every value comes from, then holds a run
config mapping (the layout of :mod:`disentkit.train.config`) and two keys read here:

- ``version``: the recipe's version, raised whenever one of its values changes;
- ``extends`` (optional): the name of a recipe (or of a shared base whose file name starts
  with ``_``, which :func:`list_recipes` hides) whose mapping this file's values update;
  mappings merge key by key, any other value replaces the base's.

:func:`load_recipe` returns the resolved mapping without those two keys, ready for
:meth:`disentkit.train.RunConfig.from_dict` (``--set`` overrides go on top as on any
config). :func:`resolve_recipe` finds the cell of a recipe family for a model and a
dataset (what ``recipe:`` in a study spec uses).

Example:
    >>> "qlae2023/qlae/shapes3d" in list_recipes()
    True
    >>> cfg = load_recipe("qlae2023/qlae/mpi3d_complex")
    >>> cfg["model"]["n_latents"], cfg["model"]["weight_decay"], cfg["batch_size"]
    (14, 0.001, 128)
    >>> resolve_recipe("qlae2023", model="ae", dataset="shapes3d_procedural")
    'qlae2023/ae/shapes3d_procedural'
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from disentkit.registry import UnknownNameError

__all__ = [
    "list_recipes",
    "load_recipe",
    "merge_config",
    "recipe_text",
    "recipe_version",
    "resolve_recipe",
]

#: keys of a recipe file that describe the recipe and are not run-config fields
META_KEYS = ("version", "extends")
_SUFFIX = ".yaml"


def _root() -> Any:
    return resources.files(__name__)


@lru_cache(maxsize=1)
def _all_files() -> dict[str, Any]:
    """Every recipe file, shared bases included: name → traversable."""
    found: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir() and not child.name.startswith(("_", ".")):
                walk(child, f"{prefix}{child.name}/")
            elif child.is_file() and child.name.endswith(_SUFFIX):
                found[prefix + child.name[: -len(_SUFFIX)]] = child

    walk(_root(), "")
    return dict(sorted(found.items()))


def list_recipes() -> list[str]:
    """The names of the shipped recipes, sorted (shared bases, ``_name``, left out).

    Example:
        >>> [n.split("/")[2] for n in list_recipes() if n.startswith("qlae2023/qlae/")]
        ['falcor3d', 'isaac3d', 'mpi3d_complex', 'shapes3d', 'shapes3d_procedural']
    """
    return [n for n in _all_files() if not n.rsplit("/", 1)[-1].startswith("_")]


def _file(name: str, *, bases: bool = False) -> Any:
    if not isinstance(name, str):
        raise TypeError(f"a recipe name must be a string; received {type(name).__name__}")
    files = _all_files()
    visible = files if bases else {n: f for n, f in files.items() if n in list_recipes()}
    if name in visible:
        return visible[name]
    known = list(visible)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownNameError(
        f"unknown recipe {name!r}{hint}; known recipes: {', '.join(known)}. "
        "Names are <family>/<model>/<dataset>; `disentkit recipes list` prints them."
    )


def recipe_text(name: str) -> str:
    """The recipe's YAML file as shipped, comments and citations included.

    Raises:
        KeyError: unknown name (the message lists the known ones and a close match).

    Example:
        >>> recipe_text("qlae2023/qlae/shapes3d").startswith("#")
        True
    """
    return _file(name).read_text(encoding="utf-8")


@cache
def _raw(name: str, *, bases: bool) -> dict[str, Any]:
    import yaml

    text = _file(name, bases=bases).read_text(encoding="utf-8")
    content = yaml.safe_load(text) or {}
    if not isinstance(content, dict):
        raise ValueError(f"recipe {name!r} must hold a mapping; its file holds "
                         f"{type(content).__name__}")
    return content


def _resolved(name: str, *, bases: bool, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in chain:
        raise ValueError(f"recipe {chain[0]!r} extends itself: {' -> '.join((*chain, name))}")
    raw = copy.deepcopy(_raw(name, bases=bases))
    parent = raw.get("extends")
    if parent is None:
        return raw
    base = _resolved(str(parent), bases=True, chain=(*chain, name))
    base.pop("version", None)
    return merge_config(base, {k: v for k, v in raw.items() if k != "extends"})


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe's run config: a nested mapping that ``RunConfig.from_dict`` accepts.

    ``extends`` chains are resolved and the recipe's own keys (``version``, ``extends``)
    replaced by the run-config field ``recipe`` (``name@version``, provenance); the result
    is a fresh copy the caller may change.

    Raises:
        KeyError: unknown name (the message lists the known ones and a close match).

    Example:
        >>> cfg = load_recipe("qlae2023/qlae/shapes3d")
        >>> cfg["model"]["name"], cfg["model"]["arch"], cfg["model"]["n_latents"], cfg["steps"]
        ('qlae', 'qlae', 12, 200000)
    """
    tree = _resolved(name, bases=False)
    return {**{k: v for k, v in tree.items() if k not in META_KEYS},
            "recipe": f"{name}@{recipe_version(name)}"}


def recipe_version(name: str) -> int:
    """The recipe's ``version`` (raised whenever one of its values changes).

    Example:
        >>> recipe_version("qlae2023/qlae/shapes3d")
        1
    """
    version = _resolved(name, bases=False).get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"recipe {name!r} must declare an integer 'version'; "
                         f"received {version!r}")
    return version


def resolve_recipe(name: str, *, model: str | None = None, dataset: str | None = None) -> str:
    """The recipe that ``name`` means for a model and a dataset.

    ``name`` is a recipe (``qlae2023/qlae/shapes3d``), a model's recipes
    (``qlae2023/qlae``: ``+ /<dataset>``) or a family (``qlae2023``:
    ``+ /<model>/<dataset>``); the first of these that exists is returned.

    Raises:
        KeyError: none of them exists (the message lists what was tried).

    Example:
        >>> resolve_recipe("qlae2023/beta_vae", dataset="isaac3d")
        'qlae2023/beta_vae/isaac3d'
    """
    known = set(list_recipes())
    tried = [name]
    if dataset is not None:
        tried.append(f"{name}/{dataset}")
        if model is not None:
            tried.append(f"{name}/{model}/{dataset}")
    for candidate in tried:
        if candidate in known:
            return candidate
    families = sorted({n.rsplit("/", 2)[0] for n in known})
    raise UnknownNameError(
        f"no recipe {' or '.join(repr(t) for t in tried)}; a recipe is named "
        f"<family>/<model>/<dataset> (families: {', '.join(families)}); "
        "`disentkit recipes list` prints every recipe"
    )


def merge_config(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``: mappings merged key by key, other values replaced.

    Neither argument is changed.

    Example:
        >>> merge_config({"model": {"name": "ae", "n_latents": 4}, "steps": 10},
        ...              {"model": {"n_latents": 12}, "steps": 20})
        {'model': {'name': 'ae', 'n_latents': 12}, 'steps': 20}
    """
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
