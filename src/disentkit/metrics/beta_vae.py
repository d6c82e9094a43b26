"""BetaVAE score (Higgins et al. 2017), as in disentanglement_lib's ``beta_vae.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disentkit._random import SeedLike, as_generator, int_seed
from disentkit._validation import check_choice
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

CLASSIFIERS = ("lbfgs", "liblinear_ovr")
_MAX_ITER = 100  # scikit-learn's LogisticRegression default


@dataclass(frozen=True, kw_only=True)
class BetaVAEResult(MetricResult):
    """BetaVAE score and diagnostics.

    Attributes:
        score: accuracy of the classifier on the evaluation points (dlib ``eval_accuracy``).
        train_accuracy: accuracy on the training points.
        confusion: ``(K, K)`` evaluation confusion counts, rows the true fixed factor,
            columns the predicted one (kept factors only, in ``kept_factors`` order).
        kept_factors: indices of the factors that can be fixed (size ≥ 2).
        n_latents: number of latents the representation returned.
        n_observations: observations encoded in all.
        classifier_n_iter: iterations the solver used (``max_iter`` = 100 means it stopped
            before converging).
    """

    SCORES = ("score", "train_accuracy")

    score: float
    train_accuracy: float
    confusion: np.ndarray
    kept_factors: tuple[int, ...]
    n_latents: int
    n_observations: int
    classifier_n_iter: int

    @property
    def eval_accuracy(self) -> float:
        """The evaluation accuracy (same as ``score``)."""
        return self.score


def _features(
    sampler: GroundTruthSampler,
    representation: RepresentationFn,
    sizes: np.ndarray,
    kept: np.ndarray,
    n_points: int,
    batch_size: int,
    encode_batch_size: int,
    rng: np.random.Generator,
    n_latents: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_points`` (label, feature) pairs; features ``(n_points, D)``."""
    labels = kept[rng.integers(0, kept.size, n_points)]  # the fixed factor of each point
    feats: list[np.ndarray] = []
    b = batch_size
    for start in range(0, n_points, POINTS_PER_DRAW):
        lab = labels[start : start + POINTS_PER_DRAW]
        m = lab.size
        f1 = draw_factors(sampler, m * b, rng, sizes, metric="beta_vae").reshape(m, b, -1)
        f2 = draw_factors(sampler, m * b, rng, sizes, metric="beta_vae").reshape(m, b, -1)
        rows = np.arange(m)
        f2[rows, :, lab] = f1[rows, :, lab]  # each pair agrees on the point's factor
        z = encode_factors(
            sampler,
            representation,
            np.concatenate([f1.reshape(m * b, -1), f2.reshape(m * b, -1)]),  # (2·m·b, K)
            encode_batch_size=encode_batch_size,
            n_latents=n_latents,
        )
        n_latents = z.shape[1]
        z1 = z[: m * b].reshape(m, b, n_latents)
        z2 = z[m * b :].reshape(m, b, n_latents)
        feats.append(np.abs(z1 - z2).mean(axis=1))  # (m, D)
    return labels, np.concatenate(feats)


@register_metric(
    "beta_vae",
    scores=(ScoreInfo("score"), ScoreInfo("train_accuracy")),
    kind="sampling",
    fast_options={"n_train": 1000, "n_eval": 500},
    reference="Higgins et al. 2017; disentanglement_lib evaluation/metrics/beta_vae.py",
)
def beta_vae_score(
    sampler: GroundTruthSampler,
    representation: RepresentationFn,
    *,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    classifier: str = "lbfgs",
    encode_batch_size: int = 1024,
    seed: SeedLike = None,
) -> BetaVAEResult:
    """BetaVAE disentanglement score: how well a linear classifier tells the fixed factor.

    Each point: choose a factor ``k`` uniformly; draw ``batch_size`` pairs of factor
    configurations (each configuration from ``sampler.sample_factors``) and copy factor ``k``
    from the first of each pair to the second, so every pair agrees on ``k``; encode both
    observations; the point's feature is ``mean over pairs of |z1 − z2|`` ``(D,)`` and its
    label ``k``. A logistic regression is trained on ``n_train`` points and scored on
    ``n_eval`` fresh points; ``score`` is the evaluation accuracy. Chance is ``1/K``.

    Estimator choices: ``classifier="lbfgs"`` is what disentanglement_lib's
    ``LogisticRegression(random_state=...)`` runs with current scikit-learn defaults: L2
    penalty (``l1_ratio=0``), ``C=1``, intercept, ``solver="lbfgs"``, ``max_iter=100``,
    ``tol=1e-4``, multinomial loss; ``random_state`` is an integer drawn from ``seed`` (lbfgs
    does not use it). ``"liblinear_ovr"`` reproduces the defaults before scikit-learn 0.22,
    which the 2019 disentanglement_lib study ran: ``solver="liblinear"``, one-vs-rest. Features
    are not standardised. Factors with one value are skipped (a warning; listed in
    ``skipped_factors``). Factors are drawn for 256 points at a time and observations are
    encoded ``encode_batch_size`` at a time, so the numbers do not depend on
    ``encode_batch_size``.

    Args:
        sampler: a :class:`~disentkit.metrics.sampling.GroundTruthSampler` (e.g. a
            ``FactorDataset``).
        representation: maps observations ``(b, ...)`` to latents ``(b, D)``.
        batch_size: pairs per point (dlib: 64).
        n_train: training points (dlib: 10,000).
        n_eval: evaluation points (dlib: 5,000).
        classifier: ``"lbfgs"`` (reference) or ``"liblinear_ovr"``.
        encode_batch_size: most observations per call of ``representation``.
        seed: int, ``numpy.random.Generator`` or ``None`` (seed 0); every random choice.

    Returns:
        :class:`BetaVAEResult`; ``score`` and ``train_accuracy`` in ``[0, 1]``.

    Example:
        >>> from disentkit.metrics.sampling import IdentityFactors
        >>> data = IdentityFactors([3, 4, 5])
        >>> r = beta_vae_score(data, lambda x: x, n_train=300, n_eval=100, batch_size=16)
        >>> r.score, r.metric_id
        (1.0, 'beta_vae/b16@1')
    """
    batch_size, n_train, n_eval, encode_batch_size = check_sampling_options(
        batch_size=batch_size, n_train=n_train, n_eval=n_eval,
        encode_batch_size=encode_batch_size,
    )
    classifier = check_choice(classifier, "classifier", CLASSIFIERS)
    sizes = check_sampler(sampler, metric="beta_vae")
    kept, skipped = split_constant_factors(sizes, metric="beta_vae", min_kept=2)
    rng = as_generator(seed)

    common = (sampler, representation, sizes, kept)
    y_train, x_train = _features(
        *common, n_train, batch_size, encode_batch_size, rng, n_latents=None
    )
    n_latents = x_train.shape[1]
    if np.unique(y_train).size < 2:
        raise ValueError(
            f"beta_vae: the {n_train} training points all fixed factor {int(y_train[0])}; "
            "a classifier needs two classes — increase n_train"
        )
    # scikit-learn is imported here, not with the module: `import disentkit` stays light.
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    random_state = int_seed(rng)
    if classifier == "lbfgs":
        model = LogisticRegression(random_state=random_state)
    else:
        model = OneVsRestClassifier(
            LogisticRegression(solver="liblinear", random_state=random_state)
        )
    model.fit(x_train, y_train)
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))

    y_eval, x_eval = _features(
        *common, n_eval, batch_size, encode_batch_size, rng, n_latents=n_latents
    )
    pred = model.predict(x_eval)
    score = float(np.mean(pred == y_eval))
    pos = np.full(sizes.size, -1)
    pos[kept] = np.arange(kept.size)
    confusion = np.zeros((kept.size, kept.size), dtype=np.int64)
    np.add.at(confusion, (pos[y_eval], pos[pred]), 1)

    if classifier == "liblinear_ovr":
        n_iter = max(int(np.max(e.n_iter_)) for e in model.estimators_)
    else:
        n_iter = int(np.max(model.n_iter_))
    variant = f"b{batch_size}" + ("" if classifier == "lbfgs" else f"-{classifier}")
    n_points = n_train + n_eval
    return BetaVAEResult(
        metric_id=metric_id("beta_vae", variant),
        options={
            "batch_size": batch_size,
            "n_train": n_train,
            "n_eval": n_eval,
            "classifier": classifier,
            "C": 1.0,
            "max_iter": _MAX_ITER,
            "encode_batch_size": encode_batch_size,
            "seed": describe_seed(seed),
        },
        n_samples=n_points,
        skipped_factors=skipped,
        score=score,
        train_accuracy=train_accuracy,
        confusion=confusion,
        kept_factors=tuple(int(k) for k in kept),
        n_latents=int(n_latents),
        n_observations=int(2 * batch_size * n_points),
        classifier_n_iter=n_iter,
    )
