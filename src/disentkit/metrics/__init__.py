"""Disentanglement metrics: pure functions on ``(latents, factors)`` arrays.

Importing this package registers every metric in :data:`METRICS`. It does not import torch.
"""

from disentkit.metrics._base import (
    METRICS,
    MetricInfo,
    MetricResult,
    ScoreInfo,
    metric_id,
    register_metric,
)
from disentkit.metrics._mi import MutualInfo, histogram_codes, mutual_info_matrix
from disentkit.metrics._split import Split, split_train_test
from disentkit.metrics.evaluate import Evaluation, ScoreRow, default_suite, evaluate
from disentkit.metrics.mig import MIGResult, mig

__all__ = [
    "METRICS",
    "Evaluation",
    "MIGResult",
    "MetricInfo",
    "MetricResult",
    "MutualInfo",
    "ScoreInfo",
    "ScoreRow",
    "Split",
    "default_suite",
    "evaluate",
    "histogram_codes",
    "metric_id",
    "mig",
    "mutual_info_matrix",
    "register_metric",
    "split_train_test",
]
