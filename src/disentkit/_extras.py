"""Optional dependencies ("extras") and the one check that names the extra to install.

The core install (``pip install disentkit``) scores representations, lists the metrics and
reads the data sets; training, figures and studies need extras::

    pip install 'disentkit[train]'   # torch, Lightning: train, evaluate a run, models
    pip install 'disentkit[viz]'     # matplotlib: figures and run reports
    pip install 'disentkit[study]'   # Ray Tune, pandas, pyarrow (and train, viz): studies
    pip install 'disentkit[all]'     # all of the above

Entry points that need an extra call :func:`require` first, so a missing package gives one
line naming the extra instead of a ``ModuleNotFoundError`` deep inside.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtraError", "missing_modules", "require"]

#: The importable modules each extra provides (the pip names are in ``pyproject.toml``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "lightning"),
    "viz": ("matplotlib",),
    "study": ("ray", "pandas", "pyarrow"),
}


class MissingExtraError(ImportError):
    """A feature needs an optional extra that is not installed."""


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them).

    Example:
        >>> missing_modules("train") in ([], ["torch", "lightning"], ["torch"], ["lightning"])
        True
    """
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {sorted(EXTRAS)}; received {extra!r}")
    return [m for m in EXTRAS[extra] if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[module] set to None (blocked)
        return False


def require(*extras: str, what: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra to install if one is missing.

    Args:
        *extras: names of extras in :data:`EXTRAS` (e.g. ``"train"``).
        what: the feature that needs them, as the user knows it (``"disentkit train"``).

    Raises:
        MissingExtraError: ``"disentkit train needs the 'train' extra: pip install
            'disentkit[train]'"`` (an ``ImportError``; the command line prints it as one
            line and exits with code 2).

    Example:
        >>> require("viz", what="figures") if not missing_modules("viz") else None
    """
    for extra in extras:
        missing = missing_modules(extra)
        if missing:
            raise MissingExtraError(
                f"{what} needs the '{extra}' extra: pip install 'disentkit[{extra}]' "
                f"(missing: {', '.join(missing)})"
            )
