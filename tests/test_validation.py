"""Bad input gets a clear error naming what was expected and what was received."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from disentkit import DisentkitWarning, discretize_factors, evaluate
from disentkit._validation import check_factors, check_latents, encode_labels, prepare
from disentkit.metrics import mig

rng = np.random.default_rng(0)
Z = rng.standard_normal((50, 3))
S = rng.integers(0, 3, (50, 2))


def with_nan():
    z = Z.copy()
    z[3, 1] = np.nan
    return z


def with_inf():
    z = Z.copy()
    z[0, 0] = -np.inf
    return z


# (case, callable, exception type, text the message must contain)
CASES = [
    ("latents None", lambda: mig(None, S), TypeError, "received None"),
    ("latents strings", lambda: mig(np.array([["a", "b"]] * 50), S), TypeError, "numeric"),
    ("latents complex", lambda: mig(Z + 1j, S), TypeError, "real-valued"),
    ("latents ragged", lambda: mig([[1.0, 2.0], [3.0]], S), TypeError, "rectangular"),
    ("latents 3-D", lambda: mig(Z[:, :, None], S), ValueError, "3-D"),
    ("latents empty rows", lambda: mig(Z[:0], S[:0]), ValueError, "non-empty"),
    ("latents no columns", lambda: mig(Z[:, :0], S), ValueError, "non-empty"),
    ("latents NaN", lambda: mig(with_nan(), S), ValueError, "row 3, column 1"),
    ("latents inf", lambda: mig(with_inf(), S), ValueError, "NaN/inf"),
    ("factors 3-D", lambda: mig(Z, S[:, :, None]), ValueError, "n_factors"),
    ("factors non-integral", lambda: mig(Z, S + 0.5), ValueError, "discretize_factors"),
    ("factors NaN", lambda: mig(Z, np.where(S == 0, np.nan, S)), ValueError, "finite"),
    ("factors object", lambda: mig(Z, S.astype(object)), TypeError, "numeric"),
    ("rows differ", lambda: mig(Z[:40], S), ValueError, "(40, 3) and factors (50, 2)"),
    ("every factor constant", lambda: mig(Z, np.zeros((50, 2))), ValueError, "single value"),
    ("too few samples", lambda: mig(Z[:1], S[:1]), ValueError, "at least 2 samples"),
    ("unknown metric", lambda: evaluate(Z, S, metrics=["migg"]), KeyError, "did you mean 'mig'"),
    ("empty metric list", lambda: evaluate(Z, S, metrics=[]), ValueError, "at least one"),
    ("bad mode", lambda: evaluate(Z, S, mode="quick"), ValueError, "'reference', 'fast'"),
    ("bad estimator", lambda: mig(Z, S, estimator="kde"), ValueError, "'histogram'"),
    ("bad n_bins", lambda: mig(Z, S, n_bins=1), ValueError, "n_bins must be an integer ≥ 2"),
    ("bad n_bootstrap", lambda: evaluate(Z, S, metrics=["mig"], n_bootstrap=-1), ValueError,
     "n_bootstrap"),
    ("bad confidence", lambda: evaluate(Z, S, metrics=["mig"], confidence=95), ValueError,
     "confidence must be in (0, 1)"),
    ("unknown option", lambda: evaluate(Z, S, metrics=["mig"], options={"mig": {"bins": 3}}),
     ValueError, "known options"),
    ("options for a metric not run", lambda: evaluate(Z, S, metrics=["mig"],
     options={"dci": {}}), ValueError, "not among the metrics run"),
    ("bad baseline", lambda: evaluate(Z, S, metrics=["mig"], baselines=["zeros"]), ValueError,
     "'ground_truth', 'random'"),
    ("bad seed", lambda: evaluate(Z, S, metrics=["mig"], seed="x"), TypeError, "seed must be"),
    ("negative seed", lambda: evaluate(Z, S, metrics=["mig"], seed=-3), ValueError,
     "non-negative"),
    ("discretize bad bins", lambda: discretize_factors(Z, n_bins=0), ValueError, "n_bins"),
    ("discretize bad strategy", lambda: discretize_factors(Z, strategy="kmeans"), ValueError,
     "'uniform' or 'quantile'"),
]


@pytest.mark.parametrize(("case", "call", "exc", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_reported_clearly(case, call, exc, text) -> None:
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value), f"{case}: message was {info.value}"


def test_at_least_twenty_bad_input_cases() -> None:
    assert len(CASES) >= 20


def test_constant_factor_warns_and_is_recorded() -> None:
    factors = np.concatenate([S, np.ones((50, 1), dtype=int)], axis=1)
    with pytest.warns(DisentkitWarning, match=r"factor\(s\) \[2\]"):
        result = mig(Z, factors)
    assert result.skipped_factors == (2,)


def test_integral_floats_are_accepted_as_factors() -> None:
    assert check_factors(S.astype(np.float32)).dtype == np.int64


def test_bool_latents_are_numbers() -> None:
    assert check_latents(Z > 0).dtype == np.float64


def test_encode_labels_handles_negative_and_sparse_labels() -> None:
    codes, sizes = encode_labels(np.array([[-5, 100], [3, 100], [-5, 7]]))
    assert codes.tolist() == [[0, 1], [1, 1], [0, 0]]
    assert sizes.tolist() == [2, 2]


def test_discretize_quantile_gives_balanced_bins() -> None:
    values = np.random.default_rng(1).exponential(size=(1000, 1))
    codes = discretize_factors(values, n_bins=4, strategy="quantile")
    counts = np.bincount(codes[:, 0])
    assert counts.tolist() == [250, 250, 250, 250]


# Documented errors only: any shape or value must give a score or one of these.
DOCUMENTED = (ValueError, TypeError)


@settings(max_examples=60, deadline=None)
@given(
    latents=hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    ),
    n_factors=st.integers(0, 3),
    n_rows=st.integers(0, 6),
)
def test_random_shapes_raise_only_documented_errors(latents, n_factors, n_rows) -> None:
    factors = np.random.default_rng(n_rows).integers(0, 3, (n_rows, n_factors))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisentkitWarning)
        try:
            result = mig(latents, factors)
        except DOCUMENTED:
            return
    assert 0.0 <= result.score <= 1.0


def test_prepare_keeps_varying_factors_in_order() -> None:
    factors = np.stack([S[:, 0], np.zeros(50, dtype=int), S[:, 1]], axis=1)
    with pytest.warns(DisentkitWarning):
        p = prepare(Z, factors, metric="test")
    assert p.kept_factors == (0, 2)
    assert p.skipped_factors == (1,)
    assert p.factors.shape == (50, 2)


def test_a_1d_array_is_one_column_in_the_api_as_in_the_cli(tmp_path) -> None:
    from disentkit.io import load_pair

    one_latent = mig(Z[:, 0], S).score
    assert one_latent == mig(Z[:, :1], S).score
    assert mig(Z, S[:, 0]).score == mig(Z, S[:, :1]).score
    np.save(tmp_path / "z.npy", Z[:, 0])
    np.save(tmp_path / "s.npy", S)
    latents, factors = load_pair(tmp_path / "z.npy", tmp_path / "s.npy")
    assert latents.shape == (Z.shape[0], 1) and mig(latents, factors).score == one_latent
