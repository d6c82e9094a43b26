"""Train/test splits for metrics that fit a classifier on a single pair of arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit._validation import check_fraction


@dataclass(frozen=True)
class Split:
    """Row indices of a train/test split and how it was drawn.

    Attributes:
        train: int64 indices of training rows.
        test: int64 indices of test rows.
        train_fraction: fraction of rows in ``train``.
        shuffle: whether rows were permuted (with the metric's seed) before splitting.
    """

    train: np.ndarray
    test: np.ndarray
    train_fraction: float
    shuffle: bool

    def describe(self) -> dict[str, object]:
        """What a result records about the split."""
        return {
            "train_fraction": self.train_fraction,
            "shuffle": self.shuffle,
            "n_train": int(self.train.size),
            "n_test": int(self.test.size),
        }


def split_train_test(
    n_samples: int,
    *,
    train_fraction: float = 0.8,
    shuffle: bool = False,
    seed: SeedLike = None,
    metric: str = "metric",
) -> Split:
    """Split ``n_samples`` rows into train and test.

    The default follows disentanglement_lib's ``split_train_test``: the first
    ``ceil(train_fraction · n)`` rows train, the rest test. With ``shuffle=True`` the rows
    are permuted with ``seed`` first.

    Example:
        >>> s = split_train_test(10)
        >>> s.train.tolist(), s.test.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    frac = check_fraction(train_fraction, "train_fraction")
    n_train = int(np.ceil(n_samples * frac))
    if n_train < 1 or n_train >= n_samples:
        raise ValueError(
            f"{metric} needs at least one training and one test sample; received "
            f"{n_samples} samples with train_fraction={frac}"
        )
    order = as_generator(seed).permutation(n_samples) if shuffle else np.arange(n_samples)
    return Split(order[:n_train], order[n_train:], frac, bool(shuffle))
