"""Unsupervised scores of a representation, as in disentanglement_lib's
``unsupervised_metrics.py``: how dependent the latents are on one another.

Used as unsupervised disentanglement proxies in Locatello et al., "Challenging Common
Assumptions in the Unsupervised Learning of Disentangled Representations", ICML 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disentkit._random import SeedLike
from disentkit._validation import check_latents, check_positive_int, prepare
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric
from disentkit.metrics._mi import histogram_codes, plugin_mutual_info

_UNBOUNDED = (0.0, float("inf"))


@dataclass(frozen=True, kw_only=True)
class UnsupervisedResult(MetricResult):
    """Unsupervised scores and diagnostics.

    Attributes:
        gaussian_total_correlation: total correlation (nats) of a Gaussian with the latents'
            covariance.
        gaussian_wasserstein_correlation: squared 2-Wasserstein distance between that
            Gaussian and the product of its marginals.
        mutual_info: mean pairwise mutual information (nats) between discretised latents,
            over ordered pairs of distinct latents.
        gaussian_wasserstein_correlation_norm: the Wasserstein score divided by the total
            variance ``trace(C)`` (dlib reports it too); in ``[0, 2]``.
        covariance: ``(D, D)`` latent covariance (ddof 1).
        mutual_info_matrix: ``(D, D)`` pairwise MI in nats, zero diagonal.
        constant_latents: latents left out of the Gaussian scores (zero variance).
        n_degenerate: eigenvalues of the correlation matrix raised to
            ``eigenvalue_floor`` (exactly or nearly linearly dependent latents).
    """

    SCORES = ("gaussian_total_correlation", "gaussian_wasserstein_correlation", "mutual_info")

    gaussian_total_correlation: float
    gaussian_wasserstein_correlation: float
    mutual_info: float
    gaussian_wasserstein_correlation_norm: float
    covariance: np.ndarray
    mutual_info_matrix: np.ndarray
    constant_latents: tuple[int, ...] = ()
    n_degenerate: int = 0


def gaussian_total_correlation(
    cov: np.ndarray, *, eigenvalue_floor: float = 1e-10
) -> tuple[float, int]:
    """Total correlation of ``N(0, cov)``: ``½(Σ log C_dd − log det C)`` in nats.

    Computed as ``−½ Σ log λ_i(R)`` over the eigenvalues of the correlation matrix ``R``
    (the same number, scale-free and stable). Eigenvalues below ``eigenvalue_floor`` are
    raised to it: a singular covariance (a latent that is a linear function of others)
    has infinite total correlation, which this keeps finite and deterministic
    (``½ ln(1/floor)`` per degenerate direction).

    Args:
        cov: ``(D, D)`` covariance with a positive diagonal.
        eigenvalue_floor: smallest eigenvalue of ``R`` used.

    Returns:
        The total correlation and the number of floored eigenvalues.

    Example:
        >>> tc, _ = gaussian_total_correlation(np.array([[1.0, 0.6], [0.6, 1.0]]))
        >>> round(tc, 6), round(float(-0.5 * np.log(1 - 0.6**2)), 6)
        (0.223144, 0.223144)
    """
    if cov.shape[0] < 2:
        return 0.0, 0
    s = 1.0 / np.sqrt(np.diag(cov))
    corr = cov * s[:, None] * s[None, :]
    lam = np.linalg.eigvalsh(corr)
    floored = lam < eigenvalue_floor
    tc = -0.5 * float(np.sum(np.log(np.maximum(lam, eigenvalue_floor))))
    return max(tc, 0.0), int(floored.sum())


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between ``N(0, C)`` and ``N(0, diag C)``.

    ``W₂² = tr C + tr Σ − 2 tr (Σ^½ C Σ^½)^½`` with ``Σ = diag C``, i.e.
    ``2 tr C − 2 Σ_i √λ_i(Σ^½ C Σ^½)`` (dlib takes ``sqrtm`` of the similar matrix
    ``Σ C``; the trace of the root is the same).

    Example:
        >>> round(gaussian_wasserstein_correlation(np.eye(3)), 12)
        0.0
    """
    root = np.sqrt(np.diag(cov))
    m = cov * root[:, None] * root[None, :]  # Σ^½ C Σ^½, symmetric PSD
    lam = np.clip(np.linalg.eigvalsh(m), 0.0, None)
    return max(float(2.0 * np.trace(cov) - 2.0 * np.sum(np.sqrt(lam))), 0.0)


@register_metric(
    "unsupervised",
    scores=(
        ScoreInfo("gaussian_total_correlation", bounds=_UNBOUNDED, higher_is_better=False),
        ScoreInfo("gaussian_wasserstein_correlation", bounds=_UNBOUNDED, higher_is_better=False),
        ScoreInfo("mutual_info", bounds=_UNBOUNDED, higher_is_better=False),
    ),
    reference="Locatello et al. 2019; disentanglement_lib "
    "evaluation/metrics/unsupervised_metrics.py",
)
def unsupervised(
    latents: object,
    factors: object = None,
    *,
    n_bins: int = 20,
    eigenvalue_floor: float = 1e-10,
    seed: SeedLike = None,
) -> UnsupervisedResult:
    """Unsupervised scores: dependence among the latents, lower is more factorised.

    The factors are not used by any score; they are taken for one interface with the other
    metrics and, when given, validated (same rows; constant factors skipped with a warning
    and recorded, as everywhere). ``factors=None`` is accepted.

    - ``gaussian_total_correlation``: with ``C`` the latents' covariance (ddof 1, as
      ``np.cov``), the KL divergence from ``N(0, C)`` to ``N(0, diag C)``,
      ``½(Σ_d log C_dd − log det C)`` in nats.
    - ``gaussian_wasserstein_correlation``: the squared 2-Wasserstein distance between
      the same two Gaussians, ``2 tr C − 2 tr (diag(C)^½ C diag(C)^½)^½``; it carries the
      latents' units (squared). ``gaussian_wasserstein_correlation_norm`` (a diagnostic)
      divides it by ``tr C``.
    - ``mutual_info``: each latent cut into ``n_bins=20`` equal-width bins (as MIG), plug-in
      MI (nats) between every pair of latents from one batched contingency table; the
      mean over the ``D(D−1)`` off-diagonal entries (dlib's ``mutual_info_score``). Not
      normalised; its finite-sample bias is positive (≈ (n_bins − 1)² / (2n) per pair), so
      independent latents score slightly above 0.

    Choices: constant latents have zero variance, so they are left out of the two Gaussian
    scores (dlib would take ``log 0``) and listed in ``constant_latents``; they stay in the
    MI mean, where they contribute 0 (as dlib). A singular covariance otherwise (a latent an
    exact linear combination of others) has infinite Gaussian total correlation; the
    correlation matrix's eigenvalues are floored at ``eigenvalue_floor`` so the score stays
    finite (``½ ln(1/floor)`` ≈ 11.5 nats per degenerate direction by default) and the
    count is recorded in ``n_degenerate``. With fewer than two (non-constant) latents there
    is no pair: the scores are 0.

    Args:
        latents: float ``(n_samples, n_latents)``.
        factors: integer ``(n_samples, n_factors)`` or ``None``; not used by the scores.
        n_bins: histogram bins per latent for ``mutual_info``.
        eigenvalue_floor: smallest correlation-matrix eigenvalue used for the total
            correlation.
        seed: accepted for a uniform interface; nothing here is random.

    Returns:
        :class:`UnsupervisedResult`; every score in ``[0, ∞)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(size=(20000, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
        >>> r = unsupervised(z)
        >>> round(r.gaussian_total_correlation, 2)  # −½ log(1 − 0.6²) = 0.223
        0.22
    """
    del seed  # deterministic: nothing is random
    if factors is None:
        lat = check_latents(latents)
        skipped: tuple[int, ...] = ()
        if lat.shape[0] < 2:
            raise ValueError(f"unsupervised needs at least 2 samples; received {lat.shape[0]}")
    else:
        p = prepare(latents, factors, metric="unsupervised")
        lat, skipped = p.latents, p.skipped_factors
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    if (
        isinstance(eigenvalue_floor, bool)
        or not isinstance(eigenvalue_floor, int | float | np.floating)
        or not 0 < eigenvalue_floor < 1
    ):
        raise ValueError(f"eigenvalue_floor must be in (0, 1); received {eigenvalue_floor!r}")
    n, d = lat.shape
    cov = np.atleast_2d(np.cov(lat, rowvar=False, ddof=1))  # (D, D)
    constant = np.flatnonzero(np.ptp(lat, axis=0) == 0)
    keep = np.flatnonzero(np.ptp(lat, axis=0) > 0)
    sub = cov[np.ix_(keep, keep)]
    tc, n_degenerate = gaussian_total_correlation(sub, eigenvalue_floor=float(eigenvalue_floor))
    w2 = gaussian_wasserstein_correlation(sub) if keep.size > 1 else 0.0
    trace = float(np.trace(sub))
    w2_norm = w2 / trace if trace > 0 else 0.0
    codes = histogram_codes(lat, n_bins)  # (n, D)
    sizes = np.full(d, n_bins, dtype=np.int64)
    mi = plugin_mutual_info(codes, sizes, codes, sizes)  # (D, D), one batched table
    np.fill_diagonal(mi, 0.0)
    mean_mi = float(mi.sum() / (d * d - d)) if d > 1 else 0.0
    variant = f"hist{n_bins}"
    if eigenvalue_floor != 1e-10:
        variant += f"-floor{eigenvalue_floor:g}"
    return UnsupervisedResult(
        metric_id=metric_id("unsupervised", variant),
        options={"n_bins": n_bins, "eigenvalue_floor": float(eigenvalue_floor)},
        n_samples=n,
        skipped_factors=skipped,
        gaussian_total_correlation=tc,
        gaussian_wasserstein_correlation=w2,
        mutual_info=mean_mi,
        gaussian_wasserstein_correlation_norm=w2_norm,
        covariance=cov,
        mutual_info_matrix=mi,
        constant_latents=tuple(int(i) for i in constant),
        n_degenerate=n_degenerate,
    )
