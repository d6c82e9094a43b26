"""disentkit: learn, measure and look at disentangled representations."""

from disentkit._validation import DisentkitWarning, discretize_factors
from disentkit._version import __version__
from disentkit.io import InputError, load_array, load_pair
from disentkit.metrics import METRICS, Evaluation, evaluate

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
