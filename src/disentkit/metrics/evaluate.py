"""Run the metric suite on one representation: scores, confidence intervals and baselines."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from disentkit._random import SeedLike, as_generator, int_seed
from disentkit._validation import (
    DisentkitWarning,
    check_choice,
    check_factors,
    check_fraction,
    check_positive_int,
    prepare,
)
from disentkit.metrics._base import METRICS, MetricInfo, MetricResult
from disentkit.metrics._mi_cache import MICache

MODES = ("reference", "fast")
BASELINES = ("ground_truth", "random")
CI_METHODS = ("percentile", "basic")


@dataclass(frozen=True)
class ScoreRow:
    """One score of one metric, as shown in tables.

    Attributes:
        metric: registry name.
        score: score name within the metric.
        value: the score on the user's representation.
        ci_low, ci_high: bootstrap percentile interval, or ``None`` without bootstrap.
        baselines: the same score on each computed baseline, by baseline name.
        metric_id: versioned metric ID.
    """

    metric: str
    score: str
    value: float
    ci_low: float | None
    ci_high: float | None
    baselines: Mapping[str, float]
    metric_id: str

    @property
    def key(self) -> str:
        return self.metric if self.score == "score" else f"{self.metric}.{self.score}"


@dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate` computed.

    Attributes:
        results: metric name → result on the user's representation.
        intervals: ``(metric, score)`` → ``(low, high)`` bootstrap interval.
        factor_intervals: ``(metric, score)`` → ``(low, high)`` arrays ``(K,)``: the same
            interval for each factor of the scores that decompose over factors.
        interval_notes: metric name → why it has no interval despite ``n_bootstrap``
            (metrics using the kNN MI estimator, which resampled duplicate rows break).
        baselines: baseline name → metric name → result.
        mode: ``"reference"`` or ``"fast"``.
        seed: the seed every metric received.
        n_bootstrap: bootstrap replicates used for the intervals (0: none).
        confidence: level of the intervals.
        ci_method: how intervals were formed from the replicates.
        seconds: metric name → wall-clock seconds on the user's representation.
    """

    results: Mapping[str, MetricResult]
    intervals: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    factor_intervals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    interval_notes: Mapping[str, str] = field(default_factory=dict)
    baselines: Mapping[str, Mapping[str, MetricResult]] = field(default_factory=dict)
    mode: str = "reference"
    seed: int = 0
    n_bootstrap: int = 0
    confidence: float = 0.95
    ci_method: str = "percentile"
    seconds: Mapping[str, float] = field(default_factory=dict)

    def rows(self) -> list[ScoreRow]:
        """One :class:`ScoreRow` per score, in the order metrics were run."""
        out = []
        for name, result in self.results.items():
            for score, value in result.scores().items():
                ci = self.intervals.get((name, score))
                base = {
                    b: res[name].scores()[score]
                    for b, res in self.baselines.items()
                    if name in res
                }
                out.append(
                    ScoreRow(
                        metric=name,
                        score=score,
                        value=value,
                        ci_low=None if ci is None else ci[0],
                        ci_high=None if ci is None else ci[1],
                        baselines=base,
                        metric_id=result.metric_id,
                    )
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """One flat dict: ``"mig": 0.41``, ``"dci.completeness": ...``, ``"mig.ci_low"``,
        ``"mig.metric_id"``, ``"baseline.random.mig"``, ... (JSON-friendly)."""
        flat: dict[str, Any] = {}
        for row in self.rows():
            flat[row.key] = row.value
            if row.ci_low is not None:
                flat[f"{row.key}.ci_low"] = row.ci_low
                flat[f"{row.key}.ci_high"] = row.ci_high
            for b, v in row.baselines.items():
                flat[f"baseline.{b}.{row.key}"] = v
        for name, result in self.results.items():
            flat[f"{name}.metric_id"] = result.metric_id
        return flat

    def to_json(self) -> dict[str, Any]:
        """Every score with its metric ID, options, sample counts, intervals and baselines."""
        return {
            "mode": self.mode,
            "seed": self.seed,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "ci_method": self.ci_method,
            "metrics": {
                name: {
                    **result.to_dict(),
                    "seconds": self.seconds.get(name),
                    "intervals": {
                        s: list(self.intervals[(name, s)])
                        for s in result.SCORES
                        if (name, s) in self.intervals
                    },
                    **(
                        {"intervals_note": self.interval_notes[name]}
                        if name in self.interval_notes
                        else {}
                    ),
                    "baselines": {
                        b: res[name].scores() for b, res in self.baselines.items() if name in res
                    },
                    "per_factor": self._per_factor_json(name, result),
                }
                for name, result in self.results.items()
            },
        }


    def _per_factor_json(self, name: str, result: MetricResult) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for score, values in result.factor_scores().items():
            entry: dict[str, Any] = {
                "factors": list(result_factors(result, values.size)),
                "values": values.tolist(),
            }
            if (name, score) in self.factor_intervals:
                lo, hi = self.factor_intervals[(name, score)]
                entry["ci_low"], entry["ci_high"] = lo.tolist(), hi.tolist()
            entry["baselines"] = {
                b: res[name].factor_scores()[score].tolist()
                for b, res in self.baselines.items()
                if name in res and res[name].factor_scores()[score].size == values.size
            }
            out[score] = entry
        return out


def result_factors(result: MetricResult, k: int) -> tuple[int, ...]:
    """Indices (into the user's factor columns) of a result's ``k`` per-factor values."""
    skipped = set(result.skipped_factors)
    return tuple(i for i in range(k + len(skipped)) if i not in skipped)[:k]


def default_suite(kind: str = "array") -> list[str]:
    """Names of the metrics :func:`evaluate` runs when none are given."""
    return [n for n, info in METRICS.items() if info.in_default_suite and info.kind == kind]


def _call(info: MetricInfo, latents: np.ndarray, factors: np.ndarray, kwargs: Mapping[str, Any],
          common: Mapping[str, Any]) -> MetricResult:
    accepted = {k: v for k, v in common.items() if k in info.option_names}
    return info.func(latents, factors, **{**accepted, **kwargs})


def check_metric_options(
    options: Mapping[str, Mapping[str, Any]] | None, metrics: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Check per-metric options against the metrics that will run, before any of them runs.

    Every key of ``options`` must be one of ``metrics``, and every option name one its
    metric accepts (the names registered with the metric), so a misspelt option of the
    last metric fails at once rather than after the others have run.

    Args:
        options: metric name → option name → value, e.g. ``{"mig": {"n_bins": 10}}``.
        metrics: registry names of the metrics that will run.

    Returns:
        a copy of ``options`` as plain dicts (empty for ``None``).

    Raises:
        ValueError: options for a metric not among ``metrics``, or an unknown option
            (named with the closest known one and every known option).
        TypeError: ``options`` or one metric's options is not a mapping.

    Example:
        >>> check_metric_options({"mig": {"n_bins": 10}}, ["dci", "mig"])
        {'mig': {'n_bins': 10}}
        >>> check_metric_options({"mig": {"nbins": 5}}, ["dci", "mig"])
        ... # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: unknown option 'nbins' for metric 'mig' (did you mean 'n_bins'?);
        known options: estimator, n_bins, n_neighbors, seed
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            "options must be a mapping of metric names to option mappings, e.g. "
            f"{{'mig': {{'n_bins': 10}}}}; received {type(options).__name__}"
        )
    names = list(dict.fromkeys(metrics))
    out: dict[str, dict[str, Any]] = {}
    for name, opts in options.items():
        if name not in names:
            raise ValueError(
                f"options given for {name!r}, which is not among the metrics run: {names}"
            )
        METRICS[name].check_options(opts)
        out[name] = dict(opts)
    return out


def _resolve_metrics(metrics: Iterable[str] | None) -> list[MetricInfo]:
    names = default_suite() if metrics is None else list(metrics)
    if isinstance(metrics, str):
        names = [metrics]
    if not names:
        raise ValueError("metrics must name at least one metric; received an empty list")
    infos = [METRICS[n] for n in names]
    sampling = [i.name for i in infos if i.kind != "array"]
    if sampling:
        raise ValueError(
            f"{sampling} sample observations from a dataset and cannot run on fixed arrays; "
            "call them with a ground-truth sampler and a representation function"
        )
    return infos


def _run_suite(
    infos: Sequence[MetricInfo],
    latents: np.ndarray,
    factors: np.ndarray,
    options: Mapping[str, Mapping[str, Any]],
    common: Mapping[str, Any],
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> tuple[dict[str, MetricResult], dict[str, float]]:
    cache = MICache()
    results: dict[str, MetricResult] = {}
    seconds: dict[str, float] = {}
    for info in infos:
        if progress is not None:
            progress(f"{label}{info.name}")
        start = time.perf_counter()
        kwargs = dict(options.get(info.name, {}))
        if info.uses_mi_cache:
            kwargs.setdefault("mi", cache)
        results[info.name] = _call(info, latents, factors, kwargs, common)
        seconds[info.name] = time.perf_counter() - start
    return results, seconds


def _random_baseline(latents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random latents shaped like ``latents``, each column as discrete as its original.

    A column with at most ``n_samples // 2`` distinct values (codebook values, code
    indices, labels, a dead constant latent) is redrawn uniformly from **its own distinct
    values**: the same values and the same number of them, so every metric's automatic
    choices (discrete or continuous latent type, estimator, binning, one-hot features) read
    the baseline as they read the representation, and the two carry the same metric IDs.
    Any other column is standard Gaussian.

    Args:
        latents: ``(n_samples, n_latents)``.
        rng: the baseline's generator.

    Returns:
        float64 ``(n_samples, n_latents)``.

    Example:
        >>> z = np.repeat([[-0.5, 2.0], [0.5, 3.0]], 50, axis=0)  # two 2-value codebooks
        >>> b = _random_baseline(z, np.random.default_rng(0))
        >>> np.unique(b[:, 0]).tolist(), np.unique(b[:, 1]).tolist()
        ([-0.5, 0.5], [2.0, 3.0])
    """
    lat = np.asarray(latents, dtype=np.float64)
    n, d = lat.shape
    out = np.empty((n, d), dtype=np.float64)
    s = np.sort(lat, axis=0)
    distinct = np.ones((n, d), dtype=bool)
    distinct[1:] = s[1:] != s[:-1]  # first occurrence of each value, per column
    n_unique = distinct.sum(axis=0)  # (D,)
    for j in range(d):  # one draw per column: D is small, the draws are vectorised
        if np.all(np.isfinite(s[:, j])) and n_unique[j] <= n // 2:
            values = s[distinct[:, j], j]  # (n_unique_j,)
            out[:, j] = values[rng.integers(0, values.size, n)]
        else:
            out[:, j] = rng.standard_normal(n)
    return out


def evaluate(
    latents: object,
    factors: object,
    *,
    metrics: Iterable[str] | None = None,
    mode: str = "reference",
    seed: SeedLike = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    ci_method: str = "percentile",
    baselines: bool | Sequence[str] = False,
    shuffle: bool = False,
    n_jobs: int = -1,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score one representation with many metrics at once.

    Each mutual-information matrix is estimated once and shared by the metrics that use it.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)``.
        metrics: registry names; default: every array metric in the default suite.
        mode: ``"reference"`` (defaults reproduce the published definitions) or ``"fast"``
            (each metric's registered ``fast_options`` swapped in; the metric IDs say so).
        seed: one integer seed handed to every metric (so a metric run alone with the same
            seed gives the same number) and used for bootstrap resampling and baselines.
        options: per-metric option overrides, e.g. ``{"dci": {"backend": "hist"}}``; all
            checked (:func:`check_metric_options`) before the first metric runs.
        n_bootstrap: number of bootstrap replicates (rows resampled with replacement, the
            whole suite recomputed on each) for percentile confidence intervals; 0 for none.
        confidence: level of the intervals.
        ci_method: ``"percentile"`` (default: the replicates' quantiles) or ``"basic"``
            (``2·estimate − quantiles``, clipped to the score's bounds). Resampling with
            replacement duplicates rows, which shifts plug-in MI estimates (the effective
            sample shrinks); when that shift exceeds the spread, the percentile interval
            can miss the point estimate, and the basic interval, which reflects the shift
            back, sits on the other side of it. Report the method with the interval.
        baselines: ``True`` for all, or a list from ``"ground_truth"`` (the factors
            themselves as latents) and ``"random"`` (latents of the same shape, each column
            redrawn uniformly from its own distinct values when it has at most
            ``n_samples // 2`` of them — codebook values, indices — else standard Gaussian;
            so a baseline goes through the same estimators and carries the same metric IDs
            as the representation): the same suite, with the same options, is computed on
            each, beside the user's scores.
        shuffle: for metrics with a train/test split, permute rows with the seed first.
        n_jobs: parallel jobs for metrics that fit one classifier per factor (joblib's
            convention; default -1: every core). The numbers do not depend on it.
        progress: called with a short label before each metric runs.

    Returns:
        :class:`Evaluation`; ``.to_dict()`` gives one flat dict.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.integers(0, 5, size=(500, 2))
        >>> out = evaluate(s + 0.1 * rng.normal(size=s.shape), s, metrics=["mig"])
        >>> sorted(out.to_dict())
        ['mig', 'mig.metric_id']
    """
    mode = check_choice(mode, "mode", MODES)
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap", minimum=0)
    confidence = check_fraction(confidence, "confidence")
    ci_method = check_choice(ci_method, "ci_method", CI_METHODS)
    rng = as_generator(seed)
    seed_int = int(seed) if isinstance(seed, int | np.integer) else int_seed(rng)
    infos = _resolve_metrics(metrics)
    # every option of every metric checked before the first metric runs
    user_options = check_metric_options(options, [i.name for i in infos])
    p = prepare(latents, factors, metric="evaluate")
    lat = p.latents
    fac = check_factors(factors)[:, list(p.kept_factors)]  # constant factors skipped once
    merged = {
        i.name: {**(i.fast_options if mode == "fast" else {}), **user_options.get(i.name, {})}
        for i in infos
    }
    common = {"seed": seed_int, "shuffle": bool(shuffle), "n_jobs": int(n_jobs)}
    results, seconds = _run_suite(infos, lat, fac, merged, common, progress)

    intervals: dict[tuple[str, str], tuple[float, float]] = {}
    factor_intervals: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    no_intervals: dict[str, str] = {}
    if n_bootstrap:
        # Resampling with replacement duplicates rows; a k-nearest-neighbour estimate then
        # finds neighbours at distance ~0 and is no longer an estimate of the same quantity
        # (InfoM of a clean code drops from 0.99 to ≈0.84): no interval for those metrics.
        for name, r in results.items():
            if r.options.get("estimator") == "knn":
                no_intervals[name] = (
                    "no bootstrap interval: the kNN mutual-information estimator is not valid "
                    "on resampled rows (duplicates are zero-distance neighbours)"
                )
        boot_infos = [i for i in infos if i.name not in no_intervals]
        boot_rng = np.random.default_rng([seed_int, 1])
        samples: dict[tuple[str, str], list[float]] = {}
        factor_samples: dict[tuple[str, str], list[np.ndarray]] = {}
        for b in range(n_bootstrap):
            idx = boot_rng.integers(0, lat.shape[0], lat.shape[0])
            with warnings.catch_warnings():
                # a resample can miss a rare class: that replicate skips the factor
                warnings.simplefilter("ignore", DisentkitWarning)
                res, _ = _run_suite(
                    boot_infos, lat[idx], fac[idx], merged, common, progress,
                    f"bootstrap {b + 1}: ",
                )
            for name, r in res.items():
                for score, v in r.scores().items():
                    samples.setdefault((name, score), []).append(v)
                if r.skipped_factors:
                    continue  # per-factor values would not line up with the estimate's
                for score, values in r.factor_scores().items():
                    factor_samples.setdefault((name, score), []).append(values)
        alpha = (1 - confidence) / 2
        for key, vals in samples.items():
            arr = np.asarray(vals)
            arr = arr[np.isfinite(arr)]
            if arr.size:
                lo, hi = np.quantile(arr, [alpha, 1 - alpha])
                if ci_method == "basic":
                    estimate = results[key[0]].scores()[key[1]]
                    bounds = next(
                        sc.bounds for sc in METRICS[key[0]].scores if sc.name == key[1]
                    )
                    lo, hi = np.clip([2 * estimate - hi, 2 * estimate - lo], *bounds)
                intervals[key] = (float(lo), float(hi))
        for key, arrays in factor_samples.items():
            stack = np.stack(arrays)  # (replicates, K)
            lo, hi = np.nanquantile(stack, [alpha, 1 - alpha], axis=0)
            if ci_method == "basic":
                estimate = results[key[0]].factor_scores()[key[1]]
                bounds = next(sc.bounds for sc in METRICS[key[0]].scores if sc.name == key[1])
                lo, hi = np.clip(2 * estimate - hi, *bounds), np.clip(2 * estimate - lo, *bounds)
            factor_intervals[key] = (lo, hi)

    base_results: dict[str, dict[str, MetricResult]] = {}
    wanted = list(BASELINES) if baselines is True else list(baselines or [])
    for b in wanted:
        check_choice(b, "baseline", BASELINES)
        if b == "ground_truth":
            base_lat = fac.astype(np.float64)
        else:
            base_lat = _random_baseline(lat, np.random.default_rng([seed_int, 2]))
        base_results[b], _ = _run_suite(
            infos, base_lat, fac, merged, common, progress, f"baseline {b}: "
        )
    return Evaluation(
        results=results,
        intervals=intervals,
        factor_intervals=factor_intervals,
        interval_notes=no_intervals,
        baselines=base_results,
        mode=mode,
        seed=seed_int,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        ci_method=ci_method,
        seconds=seconds,
    )

