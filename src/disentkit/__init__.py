"""disentkit: learn, measure and look at disentangled representations."""

from disentkit._validation import DisentkitWarning, discretize_factors
from disentkit.io import InputError, load_array, load_pair
from disentkit.metrics import METRICS, Evaluation, evaluate

__version__ = "0.1.0"

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
