"""disentkit: learn, measure and look at disentangled representations.

The names below are re-exported lazily (PEP 562 module ``__getattr__``): ``import disentkit``
loads neither numpy-heavy metric code nor scikit-learn until one of them is first used, so
the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from disentkit._version import __version__

if TYPE_CHECKING:
    from disentkit._validation import DisentkitWarning, discretize_factors
    from disentkit.io import InputError, load_array, load_pair
    from disentkit.metrics import METRICS, Evaluation, evaluate

#: Each lazily re-exported name and the module that defines it.
_LAZY = {
    "METRICS": "disentkit.metrics",
    "Evaluation": "disentkit.metrics",
    "evaluate": "disentkit.metrics",
    "DisentkitWarning": "disentkit._validation",
    "discretize_factors": "disentkit._validation",
    "InputError": "disentkit.io",
    "load_array": "disentkit.io",
    "load_pair": "disentkit.io",
}

__all__ = [
    "METRICS",
    "DisentkitWarning",
    "Evaluation",
    "InputError",
    "__version__",
    "discretize_factors",
    "evaluate",
    "load_array",
    "load_pair",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'disentkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
