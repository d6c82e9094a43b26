"""InfoMEC: InfoM (modularity), InfoE (explicitness), InfoC (compactness) of Hsu et al. 2023.

Reference: K. Hsu, W. Dorrell, J. Whittington, J. Wu, C. Finn, "Disentanglement via Latent
Quantization", NeurIPS 2023, and its code (``disentangle/metrics/infomec.py``, the standalone
evaluation; ``disentangle/metrics/{mutual_information,explicitness}.py`` as called by
``scripts/train_ae.py``, the training-time evaluation that logged the paper's numbers).

The two reference files make different estimator choices; both are offered as named
protocols (:data:`PROTOCOLS`, option ``protocol``), and the metric ID says which one scored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from disentkit._random import SeedLike, as_generator
from disentkit._validation import (
    DisentkitWarning,
    check_choice,
    check_fraction,
    check_positive_int,
    encode_labels,
    prepare,
)
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric
from disentkit.metrics._logistic import LogisticFit, fit_logistic
from disentkit.metrics._mi import ESTIMATORS, MutualInfo
from disentkit.metrics._mi_cache import MICache, resolve_mi
from disentkit.metrics._split import split_train_test
from disentkit.metrics._threads import map_costliest_first

LATENT_TYPES = ("auto", "continuous", "discrete")
PRUNING = ("standalone", "training", "none")
#: ``"standalone"``: LQ's standalone ``infomec.py``; ``"training"``: LQ's training-time
#: evaluation (``mutual_information.py`` + ``explicitness.py``), the paper's numbers.
PROTOCOLS = ("standalone", "training")
INFOE_FEATURES = ("auto", "onehot", "standardized")
INFOE_SPLITS = ("same", "heldout")
#: ``latent_type="auto"`` calls a column discrete when it takes at most this many values
#: (and at most half as many as there are samples).
MAX_DISCRETE_VALUES = 64
#: Range fractions below which a latent counts as inactive (LQ standalone / training code).
PRUNE_FRACTION = {"standalone": 1 / 20, "training": 1 / 8}


@dataclass(frozen=True)
class Protocol:
    """The estimator choices of one reference InfoMEC implementation.

    Attributes:
        name: ``"standalone"`` or ``"training"``.
        n_neighbors: k of the kNN MI estimator (continuous latents).
        standardize: centre and scale latents before the kNN estimator.
        pruning: the range rule for inactive latents (see :data:`PRUNE_FRACTION`).
        clip_nmi: clip ``I / H`` at 1 (kNN estimates can exceed ``H``).
        fixed: the choices above are the protocol's definition: a call that asks for
            another value is an error (``False``: they are defaults a call may change).
    """

    name: str
    n_neighbors: int
    standardize: bool
    pruning: str
    clip_nmi: bool
    fixed: bool


#: The protocols' settings. InfoE's features also differ (one-hot for discrete latents in
#: ``standalone``; one-hot only for integer arrays in ``training``): see ``infomec``.
PROTOCOL_SETTINGS = {
    "standalone": Protocol("standalone", n_neighbors=10, standardize=True,
                           pruning="standalone", clip_nmi=True, fixed=False),
    "training": Protocol("training", n_neighbors=3, standardize=False, pruning="training",
                         clip_nmi=False, fixed=True),
}


@dataclass(frozen=True, kw_only=True)
class InfoMECResult(MetricResult):
    """InfoM, InfoC, InfoE and their diagnostics.

    Matrices are ``(n_latents, n_factors)`` (disentkit's orientation; LQ stores the
    transpose). ``n_factors`` counts the kept factors (see ``skipped_factors``).

    Attributes:
        infom: modularity: does each active latent inform about one factor only?
        infoc: compactness: is each factor captured by one active latent only?
        infoe: explicitness: how much of each factor a linear classifier reads out.
        nmi: ``(D, K)`` normalised MI ``I(z_d; s_k) / H(s_k)``, clipped to ``[0, 1]``
            (standalone protocol) or as estimated (training protocol; ≥ 0).
        mutual_info: ``(D, K)`` MI in nats, as estimated (before normalising and clipping).
        factor_entropy: ``(K,)`` plug-in entropy of each factor, nats.
        latent_type: ``"continuous"`` or ``"discrete"`` (resolved when ``"auto"``).
        latent_range: ``(D,)`` max − min of each raw latent.
        active: ``(D,)`` bool, latents kept by pruning.
        infom_counted: ``(D,)`` bool, active latents with a non-zero NMI column (InfoM's mean).
        infom_per_latent: ``(D,)`` normalised max/sum ratio per latent; 0 where not counted.
        infoc_per_factor: ``(K,)`` normalised max/sum ratio per factor over active latents.
        unencoded_factors: factors (user's column indices) with zero NMI in every active
            latent; each scores 0 in InfoC.
        infoe_per_factor: ``(K,)`` ``max(0, (H_null − CE) / H_null)``.
        cross_entropy: ``(K,)`` log-loss CE of the classifier on the scored rows, nats.
        null_entropy: ``(K,)`` log-loss of the same classifier on all-zero features.
        infoe_clipped: factors whose classifier did worse than the null (InfoE set to 0).
        infoe_n_iter: ``(K,)`` lbfgs iterations used (100 = stopped at ``max_iter``).
    """

    SCORES = ("infom", "infoc", "infoe")
    PER_FACTOR = {"infoc": "infoc_per_factor", "infoe": "infoe_per_factor"}  # noqa: RUF012

    infom: float
    infoc: float
    infoe: float
    nmi: np.ndarray
    mutual_info: np.ndarray
    factor_entropy: np.ndarray
    latent_type: str
    latent_range: np.ndarray
    active: np.ndarray
    infom_counted: np.ndarray
    infom_per_latent: np.ndarray
    infoc_per_factor: np.ndarray
    unencoded_factors: tuple[int, ...]
    infoe_per_factor: np.ndarray
    cross_entropy: np.ndarray
    null_entropy: np.ndarray
    infoe_clipped: tuple[int, ...]
    infoe_n_iter: np.ndarray


@register_metric(
    "infomec",
    scores=(
        ScoreInfo("infom", zero_when_independent=False, label="InfoM"),
        ScoreInfo("infoc", zero_when_independent=False, label="InfoC"),
        ScoreInfo("infoe", zero_when_independent=True, label="InfoE"),
    ),
    fast_options={"infoe_max_samples": 2000, "infoe_rows_per_feature": 200},
    index_options={"latent_type": "discrete", "infoe_features": "onehot"},
    reference="Hsu et al. 2023 (latent quantization); LQ disentangle/metrics/infomec.py "
    "(protocol='standalone'), disentangle/metrics/{mutual_information,explicitness}.py "
    "(protocol='training')",
)
def infomec(
    latents: object,
    factors: object,
    *,
    protocol: str = "standalone",
    latent_type: str = "auto",
    estimator: str | None = None,
    n_neighbors: int | None = None,
    standardize: bool | None = None,
    n_bins: int = 20,
    pruning: str | None = None,
    infoe_features: str = "auto",
    infoe_split: str = "same",
    train_fraction: float = 0.8,
    shuffle: bool = False,
    infoe_max_samples: int | None = None,
    infoe_rows_per_feature: int | None = None,
    infoe: bool = True,
    seed: SeedLike = None,
    n_jobs: int | None = 1,
    mi: MutualInfo | MICache | None = None,
) -> InfoMECResult:
    """InfoM, InfoC and InfoE (Hsu et al. 2023).

    With ``NMI[d, k] = I(z_d; s_k) / H(s_k)`` (clipped at 1 by the standalone protocol:
    kNN estimates can exceed ``H(s_k)`` slightly), ``K`` factors and the ``n_a`` active
    latents:

    - ``InfoM = (mean_d max_k NMI[d, k] / Σ_k NMI[d, k] − 1/K) / (1 − 1/K)`` over active
      latents whose NMI column is not all zero;
    - ``InfoC = (mean_k max_d NMI[d, k] / Σ_d NMI[d, k] − 1/n_a) / (1 − 1/n_a)`` with ``d``
      over active latents; a factor no active latent informs about scores 0 (LQ: NaN);
    - ``InfoE = mean_k (H_null − CE_k) / H_null``, ``CE_k`` the log-loss of a multinomial
      logistic regression predicting ``s_k`` from all latents, ``H_null`` that of the same
      classifier on all-zero features (``= log(#classes)`` under balanced class weights);
      clipped at 0 where the classifier does worse than the null.

    Two protocols, after the reference's two implementations (``protocol``; the metric ID
    starts with ``training-`` for the second, so their numbers are never mixed up):

    - ``"standalone"`` (default; LQ's standalone ``infomec.py``): continuous latents — kNN
      MI (Ross 2014, as ``mutual_info_classif``) with ``n_neighbors=10`` on standardised
      latents; discrete latents (quantized values, code indices) — plug-in MI of the
      distinct values; NMI clipped at 1. Pruning ``"standalone"``: a continuous latent is
      active when its range (max − min of the raw values) exceeds 1/20 of the largest range,
      a discrete one when its range is > 0. InfoE's features: standardised continuous
      latents, one-hot discrete latents. ``n_neighbors``, ``standardize`` and ``pruning``
      are defaults here: other values are allowed and named in the metric ID.
    - ``"training"`` (LQ's training-time evaluation, which logged the paper's numbers): kNN
      MI with ``n_neighbors=3`` on raw latents (``standardize=False``), plug-in MI for
      discrete latents, NMI not clipped; pruning ``"training"``: range > 1/8 of the largest,
      for both types; InfoE's features standardised unless the latents are an *integer*
      array (code indices), then one-hot — so a scalar codebook's float values (QLAE) get
      standardised features, like continuous latents. The protocol fixes ``n_neighbors``,
      ``standardize`` and ``pruning``: asking for other values is a ``ValueError``; the
      estimator must be the latent type's (``"histogram"`` is allowed for continuous latents,
      the binned variant that code also logged).

    ``pruning="none"`` (standalone only): every latent is active. InfoE's classifier is
    ``LogisticRegression(C=inf, solver="lbfgs", max_iter=100, tol=1e-4,
    class_weight="balanced")`` in both protocols (its objective and solver settings,
    implemented in :mod:`disentkit.metrics._logistic` and tested equal to scikit-learn's
    to solver precision); CE is the unweighted log-loss
    (``sklearn.metrics.log_loss`` of ``predict_proba``), fit and scored on the same rows
    (``infoe_split="same"``, as LQ).

    Edge cases, defined rather than NaN: ``K = 1`` gives InfoM 1 (0 if no active latent is
    informative); ``n_a = 1`` gives each encoded factor an InfoC of 1; no active latent gives
    InfoM = InfoC = 0. For latents independent of the factors, InfoM and InfoC are *not* ≈0:
    they are max/sum ratios of noise-level NMI (many kNN estimates clipped at 0), typically
    ≈0.3–0.6 and anywhere in ≈0.2–0.9 from draw to draw; compare with a random baseline of
    the same shape. InfoE of independent latents is ≈0 (in-sample overfit: ≈0.01–0.02 at
    1,000 rows, less with more) as long as there are many rows per classifier feature; with
    fewer than ``MEMORISE_ROWS_PER_FEATURE`` (50) fitted rows per feature (a one-hot column
    per distinct value of a discrete latent), in-sample InfoE of uninformative latents
    rises (≈0.08 at 20 rows per feature, ≈0.4 at 5) and a :class:`DisentkitWarning` says so.

    InfoE's features are *all* latents, pruned or not (as LQ), standardised with the
    statistics of all rows (constant latents become 0). ``infoe_split="heldout"`` fits on the
    first ``ceil(train_fraction · n)`` rows (or a seeded permutation with ``shuffle=True``)
    and scores the rest; a class present in the scored rows but absent from the training
    rows is an error.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)``.
        protocol: ``"standalone"`` or ``"training"`` (see above).
        latent_type: ``"auto"`` (discrete when every column takes at most
            ``min(64, n_samples // 2)`` distinct values), ``"continuous"`` or
            ``"discrete"``. Decides the default estimator, the pruning rule and (standalone)
            InfoE's features.
        estimator: MI estimator, ``"knn"``, ``"discrete"`` or ``"histogram"`` (LQ logs 20
            bins as a sensitivity check); ``None`` picks ``"knn"`` for continuous latents and
            ``"discrete"`` for discrete ones.
        n_neighbors: k of the kNN estimator; ``None``: the protocol's (standalone 10,
            training 3).
        standardize: centre and scale latents before the kNN estimator; ``None``: the
            protocol's (standalone ``True``, training ``False``). kNN MI is shift- and
            scale-invariant, so this only moves the ``1e-10`` jitter.
        n_bins: bins per latent for ``estimator="histogram"``.
        pruning: ``"standalone"``, ``"training"`` or ``"none"`` (see above); ``None``: the
            protocol's.
        infoe_features: InfoE's classifier input: ``"auto"`` (the protocol's rule, above),
            ``"onehot"`` (one column per distinct value of each latent) or
            ``"standardized"``. The training protocol's rule reads the array's dtype, which
            is lost where latents pass through a float64 conversion (:func:`evaluate`, the
            run evaluation): there, say ``"onehot"`` for code indices. A choice other than
            the standalone rule's is named in the metric ID (``-onehot``/``-std``; training
            IDs always name it).
        infoe_split: ``"same"`` (fit and score on all rows, LQ) or ``"heldout"`` (fit on a
            train split, score on the rest).
        train_fraction: train share for ``infoe_split="heldout"``.
        shuffle: permute rows (with ``seed``) before the held-out split; by default the
            first ``ceil(train_fraction · n)`` rows train.
        infoe_max_samples: fit (and score) InfoE's classifiers on at most this many rows:
            the first ones, or a seeded subsample with ``shuffle=True``. A speed option
            (``mode="fast"`` uses 2000; InfoM and InfoC are unaffected); ``None``: all rows.
            Only those rows are standardised / one-hot encoded, with their own statistics.
        infoe_rows_per_feature: with ``infoe_max_samples``, never subsample below this many
            rows per classifier feature (a latent, or a one-hot column per distinct value of
            a discrete latent): the cap becomes ``max(infoe_max_samples,
            infoe_rows_per_feature × n_features)``. In-sample InfoE overfits more the fewer
            rows each feature has, so a fixed cap moves InfoE of wide discrete codes far
            from its full-size value (``mode="fast"`` uses 200, see the module docs).
        infoe: ``False`` skips InfoE (reported as NaN, metric ID suffix ``-noinfoe``) for
            very large inputs where only InfoM and InfoC are wanted.
        seed: seeds the kNN jitter and, when used, the shuffled split or subsample.
        n_jobs: parallel jobs for the per-factor classifiers (identical results).
        mi: a precomputed :class:`MutualInfo` for these inputs (its estimator and options
            must equal the ones asked for here, else ``ValueError``), or an :class:`MICache`
            shared between metrics.

    Returns:
        :class:`InfoMECResult`, scores in ``[0, 1]``; ``metric_id`` names the protocol
        (``training-`` prefix; none for standalone), estimator, pruning, InfoE features and
        split, e.g. ``infomec/knn10std-prune20-insample@1`` (standalone) or
        ``infomec/training-knn3-prune8-std-insample@1``.

    Example:
        >>> s = np.indices((4, 3)).reshape(2, -1).T.repeat(50, axis=0)  # (600, 2) grid
        >>> r = infomec(s * 0.25, s)  # two discrete latents, one per factor
        >>> r.latent_type, round(r.infom, 3), round(r.infoc, 3), r.infoe > 0.99
        ('discrete', 1.0, 1.0, True)
        >>> r.metric_id
        'infomec/discrete-prune20-insample@1'
        >>> t = infomec(s * 0.25, s, protocol="training")  # float values: standardised InfoE
        >>> t.metric_id, t.options["infoe_n_features"], r.options["infoe_n_features"]
        ('infomec/training-discrete-prune8-std-insample@1', 2, 7)
    """
    spec = PROTOCOL_SETTINGS[check_choice(protocol, "protocol", PROTOCOLS)]
    p = prepare(latents, factors, metric="infomec", keep_float32=estimator == "histogram")
    latent_type = check_choice(latent_type, "latent_type", LATENT_TYPES)
    pruning = spec.pruning if pruning is None else check_choice(pruning, "pruning", PRUNING)
    infoe_features = check_choice(infoe_features, "infoe_features", INFOE_FEATURES)
    infoe_split = check_choice(infoe_split, "infoe_split", INFOE_SPLITS)
    n_neighbors = spec.n_neighbors if n_neighbors is None else check_positive_int(
        n_neighbors, "n_neighbors"
    )
    standardize = spec.standardize if standardize is None else standardize
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    train_fraction = check_fraction(train_fraction, "train_fraction")
    if infoe_max_samples is not None:
        infoe_max_samples = check_positive_int(infoe_max_samples, "infoe_max_samples", minimum=2)
    if infoe_rows_per_feature is not None:
        infoe_rows_per_feature = check_positive_int(
            infoe_rows_per_feature, "infoe_rows_per_feature"
        )
    for flag, name in ((standardize, "standardize"), (shuffle, "shuffle"), (infoe, "infoe")):
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(f"{name} must be True or False; received {flag!r}")
    if latent_type == "auto":
        latent_type = _detect_latent_type(p.latents)
    if estimator is None:
        estimator = "knn" if latent_type == "continuous" else "discrete"
    estimator = check_choice(estimator, "estimator", ESTIMATORS)
    if spec.fixed:
        _check_protocol(
            spec, latent_type, estimator,
            n_neighbors=n_neighbors, standardize=standardize, pruning=pruning,
        )
    if infoe_features == "auto":  # the protocol's rule
        onehot = _is_integer_array(latents) if spec.name == "training" else (
            latent_type == "discrete"
        )
    else:
        onehot = infoe_features == "onehot"

    mi = resolve_mi(
        mi, p.latents, p.factors, p.factor_sizes, estimator=estimator, n_bins=n_bins,
        n_neighbors=n_neighbors, standardize=standardize, seed=seed,
    )
    if spec.clip_nmi:
        nmi = mi.normalized()  # (D, K), clipped to [0, 1]
    else:  # (D, K), as estimated: kNN MI may exceed the factor's entropy a little
        nmi = mi.matrix / mi.factor_entropy[None, :]

    latent_range = p.latents.max(axis=0) - p.latents.min(axis=0)
    active = _active_latents(latent_range, latent_type, pruning)
    infom, infom_per_latent, counted = _infom(nmi, active)
    infoc, infoc_per_factor, unencoded = _infoc(nmi, active)

    cap = infoe_max_samples
    if infoe and cap is not None and infoe_rows_per_feature is not None:
        cap = max(cap, infoe_rows_per_feature * _n_infoe_features(p.latents, onehot))
    rows_fit, rows_score, split_info = _infoe_rows(
        p.n_samples, infoe_split, train_fraction, shuffle, cap, seed
    )
    if infoe:
        used = np.union1d(rows_fit, rows_score)
        if used.size < p.n_samples:  # encode only the rows the classifiers see
            features = _infoe_features(p.latents[used], onehot)
            y_all = p.factors[used]
            rows_fit = np.searchsorted(used, rows_fit)
            rows_score = np.searchsorted(used, rows_score)
        else:
            features = _infoe_features(p.latents, onehot)
            y_all = p.factors
        # One BLAS thread per fit: these problems are small and BLAS threads only contend;
        # factors run in parallel threads instead (same numbers for any n_jobs). Unpenalised
        # lbfgs often stops at max_iter=100, as in the reference; n_iter is kept.
        with threadpool_limits(limits=1, user_api="blas"):
            fits = map_costliest_first(
                lambda j: _infoe_one_factor(
                    features, y_all[:, j], rows_fit, rows_score, p.kept_factors[j]
                ),
                range(len(p.kept_factors)),
                costs=p.factor_sizes,  # parameters grow with the number of classes
                n_jobs=n_jobs,
            )
        n_features = int(features.shape[1])
        if infoe_split == "same":
            _warn_if_memorising(rows_fit.size, n_features, onehot)
    else:
        fits = [(np.nan, np.nan, 0)] * len(p.kept_factors)
        n_features = None
    ce = np.array([f[0] for f in fits])
    h_null = np.array([f[1] for f in fits])
    n_iter = np.array([f[2] for f in fits], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        raw = (h_null - ce) / h_null
    infoe_per_factor = np.clip(raw, 0.0, 1.0)
    kept = np.asarray(p.kept_factors)

    prune_tag = {"standalone": "prune20", "training": "prune8", "none": "noprune"}[pruning]
    split_tag = "insample" if infoe_split == "same" else f"heldout{round(100 * train_fraction)}"
    if infoe_max_samples is not None:
        split_tag += f"-max{infoe_max_samples}"
        if infoe_rows_per_feature is not None:
            split_tag += f"-min{infoe_rows_per_feature}perfeature"
    if not infoe:
        split_tag = "noinfoe"
    tags = [f"training-{mi.variant}" if spec.name == "training" else mi.variant, prune_tag]
    if infoe and (spec.name == "training" or onehot != (latent_type == "discrete")):
        tags.append("onehot" if onehot else "std")  # always for training; else off-rule only
    tags.append(split_tag)
    options: dict[str, Any] = {
        "protocol": spec.name,
        "latent_type": latent_type,
        "estimator": mi.estimator,
        **mi.options,
        "pruning": pruning,
        "infoe_features": ("onehot" if onehot else "standardized") if infoe else None,
        "infoe_split": infoe_split,
        "infoe_max_samples": infoe_max_samples,
        "infoe_rows_per_feature": infoe_rows_per_feature,
        "infoe_n_features": n_features,  # the fitted classifier's input columns
        "infoe_rows_fit": int(rows_fit.size) if infoe else 0,
        "infoe": bool(infoe),
        "nmi_clipped": spec.clip_nmi,
        **split_info,
    }
    return InfoMECResult(
        metric_id=metric_id("infomec", "-".join(tags)),
        options=options,
        n_samples=p.n_samples,
        skipped_factors=p.skipped_factors,
        infom=infom,
        infoc=infoc,
        infoe=float(np.mean(infoe_per_factor)),
        nmi=nmi,
        mutual_info=mi.matrix,
        factor_entropy=mi.factor_entropy,
        latent_type=latent_type,
        latent_range=latent_range,
        active=active,
        infom_counted=counted,
        infom_per_latent=infom_per_latent,
        infoc_per_factor=infoc_per_factor,
        unencoded_factors=tuple(int(k) for k in kept[unencoded]),
        infoe_per_factor=infoe_per_factor,
        cross_entropy=ce,
        null_entropy=h_null,
        infoe_clipped=tuple(int(k) for k in kept[raw < 0]),
        infoe_n_iter=n_iter,
    )


def _check_protocol(
    spec: Protocol, latent_type: str, estimator: str, **chosen: object
) -> None:
    """Raise unless the options a fixed protocol defines have its values."""
    for name, value in chosen.items():
        expected = getattr(spec, name)
        if value != expected:
            raise ValueError(
                f"infomec: protocol={spec.name!r} fixes {name}={expected!r}; received "
                f"{value!r}. Leave {name} unset, or use protocol='standalone', where it "
                "is an option"
            )
    allowed = ("knn", "histogram") if latent_type == "continuous" else ("discrete",)
    if estimator not in allowed:
        raise ValueError(
            f"infomec: protocol={spec.name!r} estimates the MI of {latent_type} latents with "
            f"estimator {' or '.join(map(repr, allowed))}; received {estimator!r}. Leave "
            "estimator unset, or set latent_type to what the latents are"
        )


def _is_integer_array(x: object) -> bool:
    """Whether the latents arrived as an integer (or boolean) array: code indices."""
    dtype = x.dtype if isinstance(x, np.ndarray) else np.asarray(x).dtype
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_))


def _detect_latent_type(z: np.ndarray) -> str:
    """Discrete when every column takes ≤ min(64, n // 2) distinct values."""
    limit = min(MAX_DISCRETE_VALUES, z.shape[0] // 2)
    if z.shape[0] > 20_000:  # a few rows usually already show a continuous column
        head = np.sort(z[:10_000], axis=0)
        if np.any(1 + np.count_nonzero(head[1:] != head[:-1], axis=0) > limit):
            return "continuous"
    s = np.sort(z, axis=0)
    n_unique = 1 + np.count_nonzero(s[1:] != s[:-1], axis=0)  # (D,)
    return "discrete" if bool(np.all(n_unique <= limit)) else "continuous"


def _active_latents(latent_range: np.ndarray, latent_type: str, pruning: str) -> np.ndarray:
    """LQ's range rule: ``range > max range · fraction`` (``> 0`` for standalone discrete)."""
    if pruning == "none":
        return np.ones(latent_range.shape, dtype=bool)
    if pruning == "standalone" and latent_type == "discrete":
        return latent_range > 0
    return latent_range > latent_range.max() * PRUNE_FRACTION[pruning]


def _infom(nmi: np.ndarray, active: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    n_factors = nmi.shape[1]
    total = nmi.sum(axis=1)  # (D,)
    counted = active & (total > 0)
    per_latent = np.zeros(nmi.shape[0])
    if not counted.any():
        return 0.0, per_latent, counted
    ratio = nmi[counted].max(axis=1) / total[counted]
    if n_factors == 1:
        per_latent[counted] = 1.0
    else:
        per_latent[counted] = (ratio - 1 / n_factors) / (1 - 1 / n_factors)
    return float(np.mean(per_latent[counted])), per_latent, counted


def _infoc(nmi: np.ndarray, active: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    n_active = int(active.sum())
    sub = nmi[active]  # (n_a, K)
    total = sub.sum(axis=0)  # (K,)
    encoded = total > 0
    per_factor = np.zeros(nmi.shape[1])
    if n_active == 1:
        per_factor[encoded] = 1.0
    elif n_active > 1:
        ratio = sub[:, encoded].max(axis=0) / total[encoded]
        per_factor[encoded] = (ratio - 1 / n_active) / (1 - 1 / n_active)
    return float(np.mean(per_factor)), per_factor, ~encoded


def _infoe_rows(
    n: int,
    split: str,
    train_fraction: float,
    shuffle: bool,
    max_samples: int | None,
    seed: SeedLike,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Rows the classifiers are fit on and rows their log-loss is computed on."""
    if split == "same":
        rows = np.arange(n)
        info: dict[str, Any] = {}
        if max_samples is not None and max_samples < n:
            rows = np.sort(as_generator(seed).permutation(n)[:max_samples]) if shuffle else (
                rows[:max_samples]
            )
            info["shuffle"] = shuffle
        return rows, rows, info
    s = split_train_test(
        n, train_fraction=train_fraction, shuffle=shuffle, seed=seed, metric="infomec"
    )
    fit, score = s.train[:max_samples], s.test[:max_samples]  # [:None] keeps all
    return fit, score, {**s.describe(), "n_train": int(fit.size), "n_test": int(score.size)}


def _n_infoe_features(z: np.ndarray, onehot: bool) -> int:
    """Columns of InfoE's classifier input over all rows: one per latent (standardised), one
    per distinct value of each latent (one-hot)."""
    if not onehot:
        return int(z.shape[1])
    return int(encode_labels(z)[1].sum())


def _infoe_features(z: np.ndarray, onehot: bool) -> np.ndarray | sparse.csr_matrix:
    """Standardised latents (constant → 0) or one-hot latents (a column per value)."""
    if not onehot:
        std = z.std(axis=0)
        return (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    codes, sizes = encode_labels(z)
    n, d = codes.shape
    cols = (codes + np.concatenate([[0], np.cumsum(sizes)[:-1]])).ravel()
    rows = np.repeat(np.arange(n), d)
    return sparse.csr_matrix(
        (np.ones(n * d), (rows, cols)), shape=(n, int(sizes.sum()))
    )


def _log_loss(model: LogisticFit, x: Any, y: np.ndarray) -> float:
    """Unweighted mean log-loss, with probabilities clipped as ``sklearn.metrics.log_loss``."""
    proba = model.predict_proba(x)  # (n, C), columns = model.classes
    col = np.searchsorted(model.classes, y)
    eps = np.finfo(proba.dtype).eps
    return float(-np.mean(np.log(np.clip(proba[np.arange(y.size), col], eps, 1 - eps))))


def _infoe_one_factor(
    features: Any, y: np.ndarray, rows_fit: np.ndarray, rows_score: np.ndarray, k: int
) -> tuple[float, float, int]:
    y_fit, y_score = y[rows_fit], y[rows_score]
    classes = np.unique(y_fit)
    if classes.size < 2:
        raise ValueError(
            f"infomec: InfoE needs at least 2 classes of factor {k} among the rows the "
            f"classifier is fit on; received {classes.size} in {rows_fit.size} rows"
        )
    unseen = np.setdiff1d(np.unique(y_score), classes)
    if unseen.size:
        raise ValueError(
            f"infomec: factor {k} has classes {unseen.tolist()} in the held-out rows that "
            "the training rows lack; use shuffle=True or more samples"
        )
    model = fit_logistic(
        features[rows_fit], y_fit, c=np.inf, max_iter=100, tol=1e-4, balanced=True
    )
    ce = _log_loss(model, features[rows_score], y_score)
    return ce, _null_log_loss(classes.size), model.n_iter


#: In-sample InfoE warns below this many fitted rows per classifier feature.
MEMORISE_ROWS_PER_FEATURE = 50


def _warn_if_memorising(n_rows: int, n_features: int, onehot: bool) -> None:
    """Warn when in-sample InfoE fits few rows per feature.

    The unpenalised classifier then fits noise in the very rows it is scored on: latents
    independent of a factor (random codes, 10 discrete latents, 8 classes) scored about
    0.02 at 100 rows per one-hot feature, 0.08 at 20, 0.17 at 10 and 0.4 at 5.
    """
    if n_rows >= MEMORISE_ROWS_PER_FEATURE * n_features:
        return
    kind = "one-hot" if onehot else "latent"
    warnings.warn(
        f"infomec: InfoE is fit and scored on the same {n_rows} rows with {n_features} "
        f"{kind} features ({n_rows / n_features:.1f} rows per feature, fewer than "
        f"{MEMORISE_ROWS_PER_FEATURE}): the classifier can fit noise there, so InfoE reads "
        "high even for uninformative latents. Compare with a random baseline "
        "(baselines=True; --baselines), or score held-out rows (infoe_split='heldout'; "
        "-o infomec.infoe_split=heldout)",
        DisentkitWarning,
        stacklevel=3,
    )


def _null_log_loss(n_classes: int) -> float:
    """Log-loss of the reference's null model (the same classifier fit on a constant
    feature), in closed form: ``log C``.

    With ``class_weight="balanced"`` every class carries the same total weight, so the
    intercept-only optimum predicts ``1/C`` for each of the ``C`` classes seen in fitting;
    lbfgs starts there (all-zero intercepts) and stops at iteration 0, and every scored
    row's class is among them (checked before), so each row's loss is ``log C``.
    """
    return float(np.log(n_classes))
