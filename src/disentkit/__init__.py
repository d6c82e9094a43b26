"""disentkit: learn, measure and look at disentangled representations."""

from disentkit._validation import DisentkitWarning, discretize_factors
from disentkit.metrics import METRICS

__version__ = "0.1.0"

__all__ = ["METRICS", "DisentkitWarning", "__version__", "discretize_factors"]
