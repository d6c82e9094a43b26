"""FactorVAE score (Kim & Mnih 2018), as in disentanglement_lib's ``factor_vae.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_choice, check_positive_int
from disentkit.metrics._base import MetricResult, ScoreInfo, metric_id, register_metric
from disentkit.metrics.sampling import (
    POINTS_PER_DRAW,
    GroundTruthSampler,
    RepresentationFn,
    check_sampler,
    check_sampling_options,
    describe_seed,
    draw_factors,
    encode_factors,
    split_constant_factors,
)

PRUNE_ON = ("std", "variance")


@dataclass(frozen=True, kw_only=True)
class FactorVAEResult(MetricResult):
    """FactorVAE score and diagnostics.

    Attributes:
        score: accuracy of the majority-vote classifier on the evaluation votes (dlib
            ``eval_accuracy``); 0 when no latent is active.
        train_accuracy: accuracy on the training votes.
        n_active: number of latents kept by the prune rule (dlib reports the total number of
            latents here; this is the number actually active).
        active: ``(D,)`` bool, the latents that take part in the votes.
        global_std: ``(D,)`` standard deviation of each latent over the variance-estimate
            sample (``ddof=1``).
        train_votes: ``(K, D)`` int, training votes: row = fixed factor (kept factors, in
            ``kept_factors`` order), column = latent with the smallest normalised variance.
        eval_votes: ``(K, D)`` int, evaluation votes.
        latent_to_factor: ``(D,)`` the factor index (into the sampler's factors) the
            classifier predicts for each latent: the majority of its training votes, ties and
            latents without votes going to the first kept factor (as ``np.argmax`` in dlib).
        kept_factors: indices of the factors that can be fixed (size ≥ 2).
        n_observations: observations encoded in all.
        reason: empty, or why the score is 0 without votes (no active latent).
    """

    SCORES = ("score", "train_accuracy")

    score: float
    train_accuracy: float
    n_active: int
    active: np.ndarray
    global_std: np.ndarray
    train_votes: np.ndarray
    eval_votes: np.ndarray
    latent_to_factor: np.ndarray
    kept_factors: tuple[int, ...]
    n_observations: int
    reason: str = ""

    @property
    def eval_accuracy(self) -> float:
        """The evaluation accuracy (same as ``score``)."""
        return self.score


def _votes(
    sampler: GroundTruthSampler,
    representation: RepresentationFn,
    sizes: np.ndarray,
    kept: np.ndarray,
    n_votes: int,
    batch_size: int,
    encode_batch_size: int,
    rng: np.random.Generator,
    global_var: np.ndarray,
    active_idx: np.ndarray,
) -> np.ndarray:
    """Draw ``n_votes`` votes; returns counts ``(len(kept), D)``."""
    n_latents = global_var.size
    labels = rng.integers(0, kept.size, n_votes)  # position in ``kept`` of the fixed factor
    winners = np.empty(n_votes, dtype=np.int64)
    b = batch_size
    for start in range(0, n_votes, POINTS_PER_DRAW):
        lab = kept[labels[start : start + POINTS_PER_DRAW]]  # factor indices
        m = lab.size
        f = draw_factors(sampler, m * b, rng, sizes, metric="factor_vae").reshape(m, b, -1)
        rows = np.arange(m)
        f[rows, :, lab] = f[rows, 0, lab][:, None]  # fix the factor across each batch
        z = encode_factors(
            sampler, representation, f.reshape(m * b, -1),
            encode_batch_size=encode_batch_size, n_latents=n_latents,
        ).reshape(m, b, n_latents)
        local_var = z[:, :, active_idx].var(axis=1, ddof=1)  # (m, D_active)
        ratio = local_var / global_var[active_idx]  # variance of z / global std
        winners[start : start + m] = active_idx[np.argmin(ratio, axis=1)]
    votes = np.zeros(kept.size * n_latents, dtype=np.int64)
    np.add.at(votes, labels * n_latents + winners, 1)
    return votes.reshape(kept.size, n_latents)


@register_metric(
    "factor_vae",
    scores=(ScoreInfo("score"), ScoreInfo("train_accuracy")),
    kind="sampling",
    fast_options={"n_train": 1000, "n_eval": 500, "n_variance_estimate": 2000},
    reference="Kim & Mnih 2018; disentanglement_lib evaluation/metrics/factor_vae.py",
)
def factor_vae_score(
    sampler: GroundTruthSampler,
    representation: RepresentationFn,
    *,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    n_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    prune_on: str = "std",
    encode_batch_size: int = 1024,
    seed: SeedLike = None,
) -> FactorVAEResult:
    """FactorVAE disentanglement score: a majority vote from least-varying latent to factor.

    1. Global scale: encode ``n_variance_estimate`` observations of sampled factors; the
       standard deviation ``s_d`` of each latent (``ddof=1``).
    2. Prune: latent ``d`` is active when ``s_d ≥ prune_threshold`` (``prune_on="std"``,
       disentanglement_lib's rule ``sqrt(var) >= threshold`` with the study's threshold
       0.05) or ``s_d² ≥ prune_threshold`` (``prune_on="variance"``). A constant latent
       (``s_d = 0``) is never active, whatever the threshold: in dlib its ``0/0`` ratio wins
       every vote when the threshold is 0.
    3. Each vote: choose a factor ``k`` uniformly; draw ``batch_size`` configurations, give
       all of them the first one's value of ``k``; encode; the vote goes to the active latent
       with the smallest ``var(z_d) / s_d²`` over the batch (``ddof=1``; ties: lowest index).
    4. Classifier: each latent predicts the factor with most of its ``n_train`` training
       votes (ties and unvoted latents: the first factor, as dlib's ``argmax``). Accuracy is
       the share of votes whose factor is the one predicted for the winning latent; ``score``
       is the accuracy on ``n_eval`` fresh votes. Chance is ``1/K``.

    When no latent is active the score is 0 with ``reason`` saying why (as dlib, which
    returns 0 without voting); ``n_active`` counts active latents (dlib reports the total).
    Factors with one value are skipped (a warning; listed in ``skipped_factors``). Factors are
    drawn for 256 votes at a time, so the numbers do not depend on ``encode_batch_size``.

    Args:
        sampler: a :class:`~disentkit.metrics.sampling.GroundTruthSampler` (e.g. a
            ``FactorDataset``).
        representation: maps observations ``(b, ...)`` to latents ``(b, D)``.
        batch_size: configurations per vote (dlib: 64).
        n_train: training votes (dlib: 10,000).
        n_eval: evaluation votes (dlib: 5,000).
        n_variance_estimate: samples for the global standard deviation (dlib: 10,000).
        prune_threshold: threshold of the prune rule (dlib study: 0.05); 0 keeps every
            non-constant latent.
        prune_on: ``"std"`` (reference) or ``"variance"``: the statistic compared with
            ``prune_threshold``.
        encode_batch_size: most observations per call of ``representation``.
        seed: int, ``numpy.random.Generator`` or ``None`` (seed 0); every random choice.

    Returns:
        :class:`FactorVAEResult`; ``score`` and ``train_accuracy`` in ``[0, 1]``.

    Example:
        >>> from disentkit.metrics.sampling import IdentityFactors
        >>> data = IdentityFactors([3, 4, 5])
        >>> r = factor_vae_score(data, lambda x: x, n_train=300, n_eval=100,
        ...                      n_variance_estimate=500, batch_size=16)
        >>> r.score, r.n_active, r.metric_id
        (1.0, 3, 'factor_vae/b16-prune0.05@1')
    """
    batch_size, n_train, n_eval, encode_batch_size = check_sampling_options(
        batch_size=batch_size, n_train=n_train, n_eval=n_eval,
        encode_batch_size=encode_batch_size, min_batch=2,
    )
    n_variance_estimate = check_positive_int(n_variance_estimate, "n_variance_estimate", minimum=2)
    if (
        isinstance(prune_threshold, bool)
        or not isinstance(prune_threshold, int | float | np.floating)
        or not np.isfinite(prune_threshold)
        or prune_threshold < 0
    ):
        raise ValueError(
            f"prune_threshold must be a finite number ≥ 0; received {prune_threshold!r}"
        )
    prune_threshold = float(prune_threshold)
    prune_on = check_choice(prune_on, "prune_on", PRUNE_ON)
    sizes = check_sampler(sampler, metric="factor_vae")
    kept, skipped = split_constant_factors(sizes, metric="factor_vae", min_kept=1)
    rng = as_generator(seed)

    f = draw_factors(sampler, n_variance_estimate, rng, sizes, metric="factor_vae")
    z = encode_factors(sampler, representation, f, encode_batch_size=encode_batch_size)
    global_var = z.var(axis=0, ddof=1)  # (D,)
    global_std = np.sqrt(global_var)
    n_latents = global_var.size
    stat = global_std if prune_on == "std" else global_var
    active = (global_var > 0) & (stat >= prune_threshold)
    active_idx = np.flatnonzero(active)

    tag = "prune" if prune_on == "std" else "prunevar"
    options = {
        "batch_size": batch_size,
        "n_train": n_train,
        "n_eval": n_eval,
        "n_variance_estimate": n_variance_estimate,
        "prune_threshold": prune_threshold,
        "prune_on": prune_on,
        "encode_batch_size": encode_batch_size,
        "seed": describe_seed(seed),
    }
    common = {
        "metric_id": metric_id("factor_vae", f"b{batch_size}-{tag}{prune_threshold:g}"),
        "options": options,
        "n_samples": n_train + n_eval,
        "skipped_factors": skipped,
        "n_active": int(active_idx.size),
        "active": active,
        "global_std": global_std,
        "kept_factors": tuple(int(k) for k in kept),
    }
    if active_idx.size == 0:
        empty = np.zeros((kept.size, n_latents), dtype=np.int64)
        return FactorVAEResult(
            **common,
            score=0.0,
            train_accuracy=0.0,
            train_votes=empty,
            eval_votes=empty.copy(),
            latent_to_factor=np.full(n_latents, kept[0], dtype=np.int64),
            n_observations=n_variance_estimate,
            reason=(
                f"no active latent: every latent has {prune_on} < {prune_threshold:g} or is "
                f"constant over {n_variance_estimate} samples (largest std "
                f"{float(global_std.max()):.3g}); score set to 0 without voting"
            ),
        )

    vote_args = (sampler, representation, sizes, kept)
    train_votes = _votes(
        *vote_args, n_train, batch_size, encode_batch_size, rng, global_var, active_idx
    )
    classifier = np.argmax(train_votes, axis=0)  # (D,) position in ``kept``
    cols = np.arange(n_latents)
    train_accuracy = float(train_votes[classifier, cols].sum() / train_votes.sum())
    eval_votes = _votes(
        *vote_args, n_eval, batch_size, encode_batch_size, rng, global_var, active_idx
    )
    score = float(eval_votes[classifier, cols].sum() / eval_votes.sum())
    return FactorVAEResult(
        **common,
        score=score,
        train_accuracy=train_accuracy,
        train_votes=train_votes,
        eval_votes=eval_votes,
        latent_to_factor=kept[classifier],
        n_observations=n_variance_estimate + batch_size * (n_train + n_eval),
    )
