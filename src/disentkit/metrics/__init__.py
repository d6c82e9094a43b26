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
    score_label,
)
from disentkit.metrics._mi import MutualInfo, histogram_codes, mutual_info_matrix
from disentkit.metrics._split import Split, split_train_test
from disentkit.metrics.active import (
    ActiveLatentsResult,
    MeanSampledComparison,
    active_latents,
    compare_mean_sampled,
    gaussian_kl,
)
from disentkit.metrics.beta_vae import BetaVAEResult, beta_vae_score
from disentkit.metrics.dci import DCIResult, dci, dci_from_importance
from disentkit.metrics.evaluate import (
    Evaluation,
    ScoreRow,
    check_metric_options,
    default_suite,
    evaluate,
)
from disentkit.metrics.factor_vae import FactorVAEResult, factor_vae_score
from disentkit.metrics.infomec import InfoMECResult, infomec
from disentkit.metrics.mig import MIGResult, mig
from disentkit.metrics.modularity import (
    ExplicitnessResult,
    ModularityResult,
    explicitness,
    modularity,
)
from disentkit.metrics.sampling import (
    GroundTruthSampler,
    IdentityFactors,
    RepresentationFn,
    encode_factors,
)
from disentkit.metrics.sap import SAPResult, sap
from disentkit.metrics.unsupervised import UnsupervisedResult, unsupervised

__all__ = [
    "METRICS",
    "ActiveLatentsResult",
    "BetaVAEResult",
    "DCIResult",
    "Evaluation",
    "ExplicitnessResult",
    "FactorVAEResult",
    "GroundTruthSampler",
    "IdentityFactors",
    "InfoMECResult",
    "MIGResult",
    "MeanSampledComparison",
    "MetricInfo",
    "MetricResult",
    "ModularityResult",
    "MutualInfo",
    "RepresentationFn",
    "SAPResult",
    "ScoreInfo",
    "ScoreRow",
    "Split",
    "UnsupervisedResult",
    "active_latents",
    "beta_vae_score",
    "check_metric_options",
    "compare_mean_sampled",
    "dci",
    "dci_from_importance",
    "default_suite",
    "encode_factors",
    "evaluate",
    "explicitness",
    "factor_vae_score",
    "gaussian_kl",
    "histogram_codes",
    "infomec",
    "metric_id",
    "mig",
    "modularity",
    "mutual_info_matrix",
    "register_metric",
    "sap",
    "score_label",
    "split_train_test",
    "unsupervised",
]
