"""The metrics computed "the classic way", as the field's reference code does it.

One scikit-learn call per (latent, factor) pair, one classifier per factor, all serial,
written from the published definitions. The suite benchmark times these beside disentkit in
the same run and checks that reference-mode values agree.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score, roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC


def _split(n: int, frac: float = 0.8) -> tuple[slice, slice]:
    n_train = int(np.ceil(n * frac))
    return slice(0, n_train), slice(n_train, n)


def _discretize(z: np.ndarray, bins: int = 20) -> np.ndarray:
    out = np.empty(z.shape, dtype=np.int64)
    for d in range(z.shape[1]):
        out[:, d] = np.digitize(z[:, d], np.histogram(z[:, d], bins)[1][:-1])
    return out


def _mi_pairs(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [mutual_info_score(factors[:, k], codes[:, d]) for k in range(factors.shape[1])]
            for d in range(codes.shape[1])
        ]
    )


def mig(z: np.ndarray, s: np.ndarray) -> float:
    m = _mi_pairs(_discretize(z), s)
    h = np.array([mutual_info_score(s[:, k], s[:, k]) for k in range(s.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


def modularity(z: np.ndarray, s: np.ndarray) -> float:
    m = _mi_pairs(_discretize(z), s)
    sq = m**2
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = (sq.sum(axis=1) - top) / (top * (s.shape[1] - 1))
    return float(np.mean(np.where(top > 0, 1 - dev, 0.0)))


def unsupervised(z: np.ndarray) -> dict[str, float]:
    """dlib's unsupervised scores: Gaussian total correlation and Wasserstein correlation
    of the latents' covariance, and the mean pairwise MI of the discretised latents.
    Constant latents are left out of the two Gaussian scores (dlib would take log 0)."""
    c = _discretize(z)
    d = z.shape[1]
    m = np.array([[mutual_info_score(c[:, i], c[:, j]) for j in range(d)] for i in range(d)])
    live = z[:, z.std(axis=0) > 0]
    cov = np.cov(live, rowvar=False)
    tc = 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])
    sqrt_diag = np.diag(np.sqrt(np.diag(cov)))
    w = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(sqrt_diag @ cov @ sqrt_diag))
    return {
        "gaussian_total_correlation": float(tc),
        "gaussian_wasserstein_correlation": float(np.real(w)),
        "mutual_info": float((m.sum() - np.trace(m)) / (d * (d - 1))),
    }


def sap_discrete(z: np.ndarray, s: np.ndarray) -> float:
    tr, te = _split(z.shape[0])
    score = np.zeros((z.shape[1], s.shape[1]))
    for d in range(z.shape[1]):
        for k in range(s.shape[1]):
            clf = LinearSVC(C=0.01, class_weight="balanced")
            clf.fit(z[tr, d : d + 1], s[tr, k])
            score[d, k] = np.mean(clf.predict(z[te, d : d + 1]) == s[te, k])
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def explicitness(z: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """Mean one-vs-rest AUC of a logistic regression per factor, on the train and the test
    rows (dlib's explicitness_score_train/test)."""
    tr, te = _split(z.shape[0])
    scaler = StandardScaler().fit(z[tr])
    x_tr, x_te = scaler.transform(z[tr]), scaler.transform(z[te])
    per_factor: dict[str, list[float]] = {"train": [], "test": []}
    for k in range(s.shape[1]):
        clf = LogisticRegression().fit(x_tr, s[tr, k])
        for part, x, y in (("train", x_tr, s[tr, k]), ("test", x_te, s[te, k])):
            proba = clf.predict_proba(x)
            aucs = [roc_auc_score(y == c, proba[:, i]) for i, c in enumerate(clf.classes_)]
            per_factor[part].append(np.mean(aucs))
    return {part: float(np.mean(v)) for part, v in per_factor.items()}


def dci(z: np.ndarray, s: np.ndarray, random_states: tuple[int, ...]) -> dict[str, float]:
    """One GradientBoostingClassifier per factor, serial (seeded per factor, so the numbers
    can be compared; disentanglement_lib leaves them unseeded), with its train and test
    accuracy as dlib's ``compute_importance_gbt`` takes them."""
    tr, te = _split(z.shape[0])
    r = np.zeros((z.shape[1], s.shape[1]))
    acc: dict[str, list[float]] = {"informativeness_train": [], "informativeness_test": []}
    for k in range(s.shape[1]):
        clf = GradientBoostingClassifier(random_state=random_states[k]).fit(z[tr], s[tr, k])
        r[:, k] = np.abs(clf.feature_importances_)
        acc["informativeness_train"].append(np.mean(clf.predict(z[tr]) == s[tr, k]))
        acc["informativeness_test"].append(np.mean(clf.predict(z[te]) == s[te, k]))
    p_d = r / np.maximum(r.sum(axis=1, keepdims=True), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_d = -np.sum(np.where(p_d > 0, p_d * np.log(p_d), 0), axis=1) / np.log(s.shape[1])
    weights = r.sum(axis=1) / r.sum()
    p_k = r / r.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_k = -np.sum(np.where(p_k > 0, p_k * np.log(p_k), 0), axis=0) / np.log(z.shape[1])
    return {
        "disentanglement": float(np.sum(weights * (1 - h_d))),
        "completeness": float(np.mean(1 - h_k)),
        **{key: float(np.mean(v)) for key, v in acc.items()},
    }


def infomec_nmi(z: np.ndarray, s: np.ndarray, n_neighbors: int = 10) -> np.ndarray:
    """NMI (D, K) with the kNN estimator, one ``mutual_info_classif`` call per pair."""
    x = StandardScaler().fit_transform(z)
    h = np.array([mutual_info_score(s[:, k], s[:, k]) for k in range(s.shape[1])])
    m = np.array(
        [
            [
                mutual_info_classif(x[:, d : d + 1], s[:, k], n_neighbors=n_neighbors,
                                    random_state=0)[0]
                for k in range(s.shape[1])
            ]
            for d in range(z.shape[1])
        ]
    )
    return np.clip(m / h, 0, 1)


def infoe(z: np.ndarray, s: np.ndarray) -> float:
    """InfoE: multinomial unpenalised logistic regression per factor, fit and scored in-sample."""
    x = StandardScaler().fit_transform(z)
    out = []
    for k in range(s.shape[1]):
        y = s[:, k]
        clf = LogisticRegression(C=np.inf, max_iter=100, class_weight="balanced").fit(x, y)
        null = LogisticRegression(C=np.inf, max_iter=100, class_weight="balanced").fit(
            np.zeros_like(x), y
        )
        # LQ: balanced class weights in the fit, an unweighted log-loss.
        ce = log_loss(y, clf.predict_proba(x))
        h0 = log_loss(y, null.predict_proba(np.zeros_like(x)))
        out.append(max(0.0, (h0 - ce) / h0))
    return float(np.mean(out))


def infom_infoc(nmi: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """InfoM and InfoC from an NMI matrix with LQ's standalone pruning (range > max/20)."""
    rng = z.max(axis=0) - z.min(axis=0)
    active = rng > rng.max() / 20
    sub = nmi[active]
    k = nmi.shape[1]
    total = sub.sum(axis=1)
    keep = total > 0
    infom = np.mean((sub[keep].max(axis=1) / total[keep] - 1 / k) / (1 - 1 / k))
    n_a = sub.shape[0]
    col = sub.sum(axis=0)
    ratios = np.where(col > 0, sub.max(axis=0) / np.where(col > 0, col, 1), 1 / n_a)
    infoc = np.mean(np.where(col > 0, (ratios - 1 / n_a) / (1 - 1 / n_a), 0.0))
    return float(infom), float(infoc)
