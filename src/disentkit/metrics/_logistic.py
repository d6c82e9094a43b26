"""L2-penalised logistic regression by L-BFGS, the estimator of InfoE and explicitness.

The objective, parametrisation and solver settings are scikit-learn's
``LogisticRegression(solver="lbfgs")`` (scikit-learn ≥ 1.1, ``_logistic_regression_path``
with its ``LinearModelLoss``), so the fitted models agree with it to solver tolerance
(tested against scikit-learn on seeded problems):

- two classes: one coefficient vector, the half-binomial loss, class ``classes[1]``
  positive; more: one vector per class, the half-multinomial (softmax) loss;
- objective ``Σ wᵢ lossᵢ / Σ wᵢ + ‖W‖² / (2 C Σ wᵢ)`` (the intercept is not penalised;
  ``C = inf`` fits unpenalised), with ``wᵢ = n / (n_classes · count(yᵢ))`` for
  ``balanced=True`` and 1 otherwise;
- ``scipy.optimize.minimize(method="L-BFGS-B")`` from zeros, ``maxiter=max_iter``,
  ``maxls=50``, ``gtol=tol``, ``ftol=64 ε``; the parameters ravelled class-fastest, as
  scikit-learn ravels them.

Written here rather than imported because importing scikit-learn costs about a second
(``sklearn.utils`` imports ``scipy.stats``), more than the fast metric suite's fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import expit


@dataclass(frozen=True)
class LogisticFit:
    """A fitted model.

    Attributes:
        classes: ``(C,)`` the sorted class labels seen in fitting.
        coef: ``(1, F)`` for two classes (``classes[1]``'s log-odds), else ``(C, F)``.
        intercept: ``(1,)`` or ``(C,)``.
        n_iter: L-BFGS iterations run (at most ``max_iter``).
    """

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int

    def predict_proba(self, x: Any) -> np.ndarray:
        """``(n, C)`` class probabilities, columns in ``classes`` order."""
        raw = np.asarray(x @ self.coef.T) + self.intercept  # (n, 1) or (n, C)
        if self.classes.size == 2:
            p = expit(raw[:, 0])
            return np.column_stack([1.0 - p, p])
        raw = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)


def fit_logistic(
    x: Any, y: np.ndarray, *, c: float = 1.0, max_iter: int = 100, tol: float = 1e-4,
    balanced: bool = False,
) -> LogisticFit:
    """Fit an L2-penalised logistic regression with an intercept (see the module doc).

    Args:
        x: ``(n, F)`` float features, dense or a scipy sparse matrix.
        y: ``(n,)`` labels, at least two distinct.
        c: inverse penalty strength (``np.inf``: no penalty).
        max_iter: L-BFGS iteration limit.
        tol: L-BFGS projected-gradient tolerance.
        balanced: weight each row by ``n / (n_classes · count of its class)``.

    Returns:
        :class:`LogisticFit`.

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> fit = fit_logistic(x, np.array([0, 0, 1, 1]))
        >>> fit.predict_proba(x).argmax(axis=1).tolist()
        [0, 0, 1, 1]
    """
    from scipy.optimize import minimize  # lazily: only the fits need it

    if not sparse.issparse(x):
        x = np.asarray(x, dtype=np.float64)
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    n, f = x.shape
    k = classes.size
    if k < 2:
        raise ValueError(f"logistic regression needs at least 2 classes; received {k}")
    if balanced:
        weight = (n / (k * np.bincount(codes, minlength=k)))[codes]
    else:
        weight = np.ones(n)
    total = float(weight.sum())
    penalty = 0.0 if np.isinf(c) else 1.0 / (c * total)
    xt = x.T.tocsr() if sparse.issparse(x) else x.T  # (F, n)

    if k == 2:
        target = (codes == 1).astype(np.float64)

        def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
            raw = np.asarray(x @ w[:f]) + w[f]  # (n,)
            loss = float(np.sum(weight * (np.logaddexp(0.0, raw) - target * raw)) / total)
            g = weight * (expit(raw) - target) / total  # (n,)
            grad = np.empty(f + 1)
            grad[:f] = np.asarray(xt @ g) + penalty * w[:f]
            grad[f] = g.sum()
            return loss + 0.5 * penalty * float(w[:f] @ w[:f]), grad

        res = minimize(loss_grad, np.zeros(f + 1), **_lbfgs(max_iter, tol))
        w = res.x.reshape(1, f + 1)
    else:
        rows = np.arange(n)

        def loss_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = flat.reshape((k, f + 1), order="F")
            raw = np.asarray(x @ w[:, :f].T) + w[:, f]  # (n, K)
            top = raw.max(axis=1, keepdims=True)
            e = np.exp(raw - top)
            s = e.sum(axis=1, keepdims=True)
            picked = raw[rows, codes]  # each row's own class
            loss = float(np.sum(weight * (np.log(s[:, 0]) + top[:, 0] - picked)) / total)
            g = e / s
            g[rows, codes] -= 1.0  # softmax minus the one-hot target
            g *= (weight / total)[:, None]  # (n, K)
            grad = np.empty((k, f + 1), order="F")
            grad[:, :f] = np.asarray(xt @ g).T + penalty * w[:, :f]
            grad[:, f] = g.sum(axis=0)
            reg = 0.5 * penalty * float(np.sum(w[:, :f] ** 2))
            return loss + reg, grad.ravel(order="F")

        res = minimize(loss_grad, np.zeros(k * (f + 1)), **_lbfgs(max_iter, tol))
        w = res.x.reshape((k, f + 1), order="F")
    return LogisticFit(
        classes=classes,
        coef=np.ascontiguousarray(w[:, :f]),
        intercept=w[:, f].copy(),
        n_iter=int(min(res.nit, max_iter)),
    )


def _lbfgs(max_iter: int, tol: float) -> dict[str, Any]:
    return {
        "method": "L-BFGS-B",
        "jac": True,
        "options": {
            "maxiter": max_iter,
            "maxls": 50,
            "gtol": tol,
            "ftol": 64 * np.finfo(float).eps,
        },
    }
