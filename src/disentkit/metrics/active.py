"""Active and passive latents (Bonheme & Grzes, "Be More Active!", JMLR 2023).

Under selective posterior collapse only some latents of a VAE, the *active* ones, carry
information about the data; the others, *passive*, have a posterior equal to the prior for
every input (mean ≈ 0, variance ≈ 1). Passive latents make mean representations look
correlated although sampled ones are not. This module finds the active set and compares
correlations in mean and sampled representations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_latents, prepare
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric


def _check_threshold(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"threshold must be a finite number > 0; received {value!r}")
    return float(value)


def gaussian_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Per-dimension ``KL(N(mean, exp(logvar)) ‖ N(0, 1))`` in nats, elementwise.

    ``½ (μ² + σ² − log σ² − 1)``.

    Example:
        >>> gaussian_kl(np.array([0.0, 1.0]), np.array([0.0, 0.0])).tolist()
        [0.0, 0.5]
    """
    with np.errstate(over="ignore"):
        return 0.5 * (np.square(mean) + np.exp(logvar) - logvar - 1.0)


def _posterior(
    latents: object, mean: object, logvar: object
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resolve (codes, logvar) from the arguments; logvar None means deterministic codes."""
    if logvar is None:
        if mean is not None:
            raise ValueError(
                "mean was given without logvar; pass both (a VAE's posterior) or only latents"
            )
        return check_latents(latents), None
    lv = check_latents(logvar, name="logvar")
    if mean is None:
        if latents is None:
            raise ValueError("logvar was given without means; pass mean= (or latents=)")
        mu = check_latents(latents)
    else:
        mu = check_latents(mean, name="mean")
        if latents is not None and not np.array_equal(check_latents(latents), mu):
            raise ValueError(
                "latents and mean were both given and differ; pass the posterior means once"
            )
    if mu.shape != lv.shape:
        raise ValueError(
            f"mean and logvar must have the same shape; received {mu.shape} and {lv.shape}"
        )
    return mu, lv


@dataclass(frozen=True, kw_only=True)
class ActiveLatentsResult(MetricResult):
    """Which latents are active.

    Attributes:
        fraction_active: share of latents that are active.
        n_active: number of active latents.
        active: ``(D,)`` bool.
        statistic: ``(D,)`` the per-latent activity compared with ``threshold``: mean KL to
            the prior in nats (``criterion="kl"``), or the latent's variance, divided by the
            largest variance when ``relative`` (``criterion="variance"``).
        criterion: ``"kl"`` or ``"variance"``.
        variance_of_mean: ``(D,)`` variance over the data of the codes (the means for a VAE).
        mean_variance: ``(D,)`` average posterior variance ``E_x[σ²]`` (``criterion="kl"``),
            else ``None``.
    """

    SCORES = ("fraction_active",)

    fraction_active: float
    n_active: int
    active: np.ndarray
    statistic: np.ndarray
    criterion: str
    variance_of_mean: np.ndarray
    mean_variance: np.ndarray | None = None

    @property
    def active_indices(self) -> np.ndarray:
        return np.flatnonzero(self.active)

    @property
    def passive_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.active)


@register_metric(
    "active_latents",
    scores=(ScoreInfo("fraction_active", bounds=(0.0, 1.0), zero_when_independent=False),),
    in_default_suite=False,
    reference="Bonheme & Grzes, Be More Active! (JMLR 2023); Rolinek et al. 2019",
)
def active_latents(
    latents: object,
    factors: object = None,
    *,
    mean: object = None,
    logvar: object = None,
    threshold: float = 0.01,
    relative: bool = True,
    seed: SeedLike = None,
) -> ActiveLatentsResult:
    """Active and passive latents of a representation.

    With a VAE posterior (``logvar`` given; means from ``mean`` or ``latents``): latent ``d``
    is passive when its KL to the prior averaged over the data,
    ``mean_x ½(μ_d² + σ_d² − log σ_d² − 1)``, is below ``threshold`` nats — the posterior is
    the prior for (almost) every input, the multi-example form of the polarised regime's
    passive condition (mean ≈ 0 and variance ≈ 1). The mean KL is the latent's rate, an
    upper bound on the information ``I(x; z_d)`` it carries. A latent whose means are
    constant over the data is passive whatever its KL (a fixed posterior, even a narrow
    one, says nothing about the input). Otherwise active.

    With deterministic codes (no ``logvar``): latent ``d`` is passive when its variance over
    the data is below ``threshold`` times the largest latent variance (``relative=True``,
    so the rule does not depend on the code's units), or below ``threshold`` itself
    (``relative=False``). A constant latent is always passive; if every latent is constant,
    none is active.

    This is an analysis, not a disentanglement score: ``fraction_active`` says how much of
    the code is in use, does not look at the factors, and is 1 for pure-noise latents (noise
    varies). It is not in the default suite. ``factors``, when given, are only validated
    (rows must match; constant factors skipped with a warning) so the function fits the
    ``metric(latents, factors)`` interface; ``seed`` is accepted for the same reason and
    unused (the analysis is deterministic).

    Args:
        latents: float ``(n_samples, n_latents)``: codes, or a VAE's posterior means.
        factors: optional integer ``(n_samples, n_factors)``; not used in the computation.
        mean: the posterior means, if not passed as ``latents``.
        logvar: posterior log-variances ``(n_samples, n_latents)``; selects the KL rule.
        threshold: nats (KL rule) or a variance (ratio) (variance rule).
        relative: variance rule only: compare with ``threshold · max variance``.
        seed: unused.

    Returns:
        :class:`ActiveLatentsResult`; ``fraction_active`` in ``[0, 1]``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> mu = np.c_[rng.normal(size=500), 0.001 * rng.normal(size=500)]
        >>> lv = np.c_[np.full(500, -4.0), np.zeros(500)]
        >>> r = active_latents(mu, logvar=lv)
        >>> r.active.tolist(), r.fraction_active, r.metric_id
        ([True, False], 0.5, 'active_latents/kl0.01@1')
    """
    threshold = _check_threshold(threshold)
    if not isinstance(relative, bool | np.bool_):
        raise ValueError(f"relative must be True or False; received {relative!r}")
    codes, lv = _posterior(latents, mean, logvar)
    skipped: tuple[int, ...] = ()
    if factors is not None:
        skipped = prepare(codes, factors, metric="active_latents", min_samples=2).skipped_factors
    elif codes.shape[0] < 2:
        raise ValueError(f"active_latents needs at least 2 samples; received {codes.shape[0]}")
    variance_of_mean = codes.var(axis=0)  # (D,)
    mean_variance = None
    if lv is not None:
        criterion = "kl"
        with np.errstate(over="ignore"):
            mean_variance = np.exp(lv).mean(axis=0)
        statistic = gaussian_kl(codes, lv).mean(axis=0)  # (D,) nats
        variant = f"kl{threshold:g}"
    else:
        criterion = "variance"
        top = variance_of_mean.max()
        if relative:
            statistic = variance_of_mean / top if top > 0 else np.zeros_like(variance_of_mean)
        else:
            statistic = variance_of_mean
        variant = f"{'rel' if relative else ''}var{threshold:g}"
    # A latent whose code (mean) is constant over the data cannot carry information about it.
    active = (statistic >= threshold) & (variance_of_mean > 0)
    n_active = int(active.sum())
    return ActiveLatentsResult(
        metric_id=metric_id("active_latents", variant),
        options={
            "criterion": criterion,
            "threshold": threshold,
            "relative": bool(relative) if lv is None else None,
        },
        n_samples=int(codes.shape[0]),
        skipped_factors=skipped,
        fraction_active=n_active / codes.shape[1],
        n_active=n_active,
        active=active,
        statistic=statistic,
        criterion=criterion,
        variance_of_mean=variance_of_mean,
        mean_variance=mean_variance,
    )


def _correlation(x: np.ndarray) -> np.ndarray:
    """Pearson correlation ``(D, D)`` of the columns of ``x``; 0 where a column is constant."""
    xc = x - x.mean(axis=0)
    std = np.sqrt(np.square(xc).mean(axis=0))
    safe = np.where(std > 0, std, 1.0)
    z = xc / safe
    c = (z.T @ z) / x.shape[0]
    c[std == 0, :] = 0.0
    c[:, std == 0] = 0.0
    np.fill_diagonal(c, np.where(std > 0, 1.0, 0.0))
    return np.clip(c, -1.0, 1.0)


def _mean_abs_offdiag(c: np.ndarray, idx: np.ndarray) -> float:
    if idx.size < 2:
        return float("nan")
    sub = np.abs(c[np.ix_(idx, idx)])
    return float((sub.sum() - np.trace(sub)) / (idx.size * (idx.size - 1)))


@dataclass(frozen=True)
class MeanSampledComparison:
    """Correlations among passive and among active latents, mean vs sampled representation.

    Attributes:
        active: ``(D,)`` bool, the active latents used for the split.
        kl: ``(D,)`` mean KL to the prior per latent, in nats.
        corr_mean: ``(D, D)`` Pearson correlations of the mean representation.
        corr_sampled: ``(D, D)`` Pearson correlations of the sampled representation.
        passive_mean: mean ``|corr|`` over pairs of distinct passive latents, means.
        passive_sampled: the same on samples.
        active_mean: mean ``|corr|`` over pairs of distinct active latents, means.
        active_sampled: the same on samples.
        n_samples: rows.
        threshold: KL threshold of the active set (nats), or ``None`` if ``active`` was given.
        seed: the seed of the samples, as passed.
    """

    active: np.ndarray
    kl: np.ndarray
    corr_mean: np.ndarray
    corr_sampled: np.ndarray
    passive_mean: float
    passive_sampled: float
    active_mean: float
    active_sampled: float
    n_samples: int
    threshold: float | None
    seed: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The four summary numbers and the active set, JSON-friendly (NaN → ``None``)."""

        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "passive_mean": num(self.passive_mean),
            "passive_sampled": num(self.passive_sampled),
            "active_mean": num(self.active_mean),
            "active_sampled": num(self.active_sampled),
            "active": self.active.tolist(),
            "n_samples": self.n_samples,
            "threshold": self.threshold,
        }


def compare_mean_sampled(
    mean: object,
    logvar: object,
    *,
    threshold: float = 0.01,
    active: object = None,
    seed: SeedLike = None,
) -> MeanSampledComparison:
    """Compare correlations among passive and active latents in mean and sampled codes.

    Draws one sampled representation ``z = μ + exp(½ logvar) · ε`` per row, ``ε ~ N(0, I)``
    from ``seed``, and splits the latents into active and passive with
    :func:`active_latents` (mean KL < ``threshold`` nats → passive) unless ``active`` is given.
    Reports the mean absolute off-diagonal Pearson correlation within each group, in the
    mean and in the sampled representation. Bonheme & Grzes find passive latents correlated
    in means (their small residual variations move together) but not in samples (the unit
    prior noise dominates), while active latents look alike in both.

    A constant column has correlation 0 with every other; a group with fewer than two
    latents has no pairs and gives NaN (``None`` in :meth:`MeanSampledComparison.to_dict`).

    Args:
        mean: posterior means ``(n_samples, n_latents)``.
        logvar: posterior log-variances, same shape.
        threshold: KL threshold in nats for the active set.
        active: optional ``(n_latents,)`` bool mask overriding the KL rule.
        seed: int, ``numpy.random.Generator`` or ``None`` (seed 0) for ``ε``.

    Returns:
        :class:`MeanSampledComparison`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> shared = rng.normal(size=(2000, 1))
        >>> passive = 0.01 * (shared + 0.1 * rng.normal(size=(2000, 2)))
        >>> mu = np.c_[rng.normal(size=(2000, 2)), passive]
        >>> lv = np.c_[np.full((2000, 2), -5.0), np.zeros((2000, 2))]
        >>> c = compare_mean_sampled(mu, lv, seed=0)
        >>> c.active.tolist(), c.passive_mean > 0.9, c.passive_sampled < 0.1
        ([True, True, False, False], True, True)
    """
    threshold = _check_threshold(threshold)
    mu, lv = _posterior(None, mean, logvar)
    assert lv is not None
    if mu.shape[0] < 2:
        raise ValueError(f"compare_mean_sampled needs at least 2 samples; received {mu.shape[0]}")
    kl = gaussian_kl(mu, lv).mean(axis=0)
    if active is None:
        mask = kl >= threshold
        used_threshold: float | None = threshold
    else:
        mask = np.asarray(active)
        if mask.dtype != np.bool_ or mask.shape != (mu.shape[1],):
            raise ValueError(
                f"active must be a bool mask of shape ({mu.shape[1]},); received "
                f"{mask.dtype} array of shape {mask.shape}"
            )
        used_threshold = None
    rng = as_generator(seed)
    eps = rng.standard_normal(mu.shape)
    with np.errstate(over="ignore"):
        sampled = mu + np.exp(0.5 * lv) * eps
    if not np.isfinite(sampled).all():
        raise ValueError("logvar is too large: the sampled representation overflows")
    corr_mean = _correlation(mu)
    corr_sampled = _correlation(sampled)
    act = np.flatnonzero(mask)
    pas = np.flatnonzero(~mask)
    return MeanSampledComparison(
        active=mask.copy(),
        kl=kl,
        corr_mean=corr_mean,
        corr_sampled=corr_sampled,
        passive_mean=_mean_abs_offdiag(corr_mean, pas),
        passive_sampled=_mean_abs_offdiag(corr_sampled, pas),
        active_mean=_mean_abs_offdiag(corr_mean, act),
        active_sampled=_mean_abs_offdiag(corr_sampled, act),
        n_samples=int(mu.shape[0]),
        threshold=used_threshold,
        seed=seed if seed is None or isinstance(seed, int | np.integer) else "Generator",
    )


__all__ = [
    "ActiveLatentsResult",
    "MeanSampledComparison",
    "active_latents",
    "compare_mean_sampled",
    "gaussian_kl",
]
