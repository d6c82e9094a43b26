"""The L-BFGS logistic regression of InfoE and explicitness against scikit-learn's."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from disentkit.metrics._logistic import fit_logistic


def _sklearn(x, y, c: float, balanced: bool, max_iter: int = 100) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning where max_iter is reached
        return LogisticRegression(
            C=c, max_iter=max_iter, tol=1e-4, class_weight="balanced" if balanced else None
        ).fit(x, y)


def _onehot(codes: np.ndarray, size: int) -> sparse.csr_matrix:
    n, d = codes.shape
    cols = (codes + size * np.arange(d)).ravel()
    return sparse.csr_matrix(
        (np.ones(n * d), (np.repeat(np.arange(n), d), cols)), shape=(n, size * d)
    )


def _problem(kind: str, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "sparse":
        codes = rng.integers(0, 6, (1500, 4))
        y = (codes[:, 0] + rng.integers(0, 2, 1500)) % n_classes
        return _onehot(codes, 6), y
    z = rng.standard_normal((1200, 6))
    noise = 0.05 if kind == "separable" else 0.8
    y = np.digitize(z[:, 0] + noise * rng.standard_normal(1200),
                    np.quantile(z[:, 0], np.linspace(0, 1, n_classes + 1)[1:-1]))
    return z, y + 3  # labels need not start at 0


@pytest.mark.parametrize("kind", ["dense", "separable", "sparse"])
@pytest.mark.parametrize("n_classes", [2, 3, 12])
@pytest.mark.parametrize(("c", "balanced"), [(np.inf, True), (1.0, False), (0.05, True)])
def test_matches_sklearn_lbfgs(kind: str, n_classes: int, c: float, balanced: bool) -> None:
    x, y = _problem(kind, n_classes, seed=n_classes)
    ref = _sklearn(x, y, c, balanced)
    fit = fit_logistic(x, y, c=c, balanced=balanced)
    np.testing.assert_array_equal(fit.classes, ref.classes_)
    assert fit.n_iter == int(ref.n_iter_.max())
    np.testing.assert_allclose(fit.predict_proba(x), ref.predict_proba(x), rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.coef, ref.coef_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.intercept, ref.intercept_, rtol=1e-6, atol=1e-6)


def test_stops_at_max_iter_like_sklearn() -> None:
    # Unpenalised and separable: the optimum is at infinity, both run to the limit.
    x, y = _problem("separable", 5, seed=1)
    ref = _sklearn(x, y, np.inf, True, max_iter=15)
    fit = fit_logistic(x, y, c=np.inf, max_iter=15, balanced=True)
    assert fit.n_iter == int(ref.n_iter_.max()) == 15
    np.testing.assert_allclose(fit.predict_proba(x), ref.predict_proba(x), atol=1e-8)


def test_probabilities_are_distributions_in_class_order() -> None:
    x, y = _problem("dense", 4, seed=2)
    p = fit_logistic(x, y).predict_proba(x)
    assert p.shape == (x.shape[0], 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    hits = np.mean(p.argmax(axis=1) == np.searchsorted(np.unique(y), y))
    assert hits > 0.45  # chance is 0.25; columns out of class order would score below it


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 classes; received 1"):
        fit_logistic(np.zeros((5, 2)), np.ones(5))


def test_the_fast_suite_does_not_import_sklearn_or_joblib() -> None:
    # scikit-learn's import (about a second) would dominate `disentkit score --mode fast`.
    code = (
        "import sys, warnings; import numpy as np; from disentkit import evaluate\n"
        "rng = np.random.default_rng(0); y = rng.integers(0, 4, (800, 3))\n"
        "z = y @ rng.standard_normal((3, 5)) + rng.standard_normal((800, 5))\n"
        "warnings.simplefilter('ignore'); evaluate(z, y, mode='fast')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'torch', 'joblib'}))\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "False"
