"""Figures of a run: heatmaps, score bars, codebook usage, activity, training curves.

Each plotting function returns a :class:`matplotlib.figure.Figure` drawn on an Agg canvas
(built without pyplot, so no global backend is switched, no window opens and nothing is
kept alive in a figure manager); :func:`save_figure` writes it as a PNG at :data:`DPI`.
Matplotlib is imported when a function is called, never when :mod:`disentkit` is.

:func:`render_run_figures` draws every figure that applies to a run directory into
``RUN/figures/`` (the picture functions of :mod:`disentkit.viz.arrays` included); the HTML
report calls it.

Example:
    >>> import numpy as np
    >>> fig = mi_heatmap(np.array([[0.1, 0.9], [0.8, 0.2]]), ["x", "y"])
    >>> matching_order(np.array([[0.1, 0.9], [0.8, 0.2]])).tolist()
    [1, 0]
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from disentkit._validation import check_positive_int
from disentkit.rundir import METRICS_NAME, RunDir, read_json

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "active_passive",
    "codebook_usage",
    "factor_bars",
    "importance_heatmap",
    "matching_order",
    "mi_heatmap",
    "render_run_figures",
    "save_figure",
    "score_bars",
    "score_table",
    "training_curves",
    "training_scores",
]

DPI = 150
"""Resolution of every PNG :func:`save_figure` writes."""
_ACTIVE, _PASSIVE = "#1f77b4", "#d62728"
_BASELINE_STYLE = {
    "random": {"marker": "x", "color": "#555555", "label": "random baseline"},
    "ground_truth": {"marker": "*", "color": "#2ca02c", "label": "ground-truth baseline"},
}
_LOG_SKIP = ("step", "epoch", "steps_per_second")
"""Columns of ``log/metrics.csv`` that are not loss terms."""


def new_figure(width: float, height: float) -> Figure:
    """A new figure on its own Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``dpi`` (atomically; parent folders created).

    The PNG carries no software-version metadata, so the same figure gives the same bytes.
    """
    from disentkit._atomic import atomic_write

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})

    return atomic_write(path, write)


# --------------------------------------------------------------------------- heatmaps


def _matrix(values: Any, name: str, factor_names: Sequence[str] | None) -> np.ndarray:
    m = np.asarray(values, dtype=np.float64)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"{name} must be a 2-d (n_latents, n_factors) array; received shape "
                         f"{m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    if factor_names is not None and len(factor_names) != m.shape[1]:
        raise ValueError(f"factor_names has {len(factor_names)} names for {m.shape[1]} "
                         f"factors (columns of {name})")
    return m


def matching_order(matrix: Any) -> np.ndarray:
    """Row order that puts each factor's matched latent on the diagonal.

    Latents (rows) are matched one-to-one to factors (columns) maximising the total score
    (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`). The matched
    latents come first, in factor order; unmatched latents (more latents than factors)
    follow, grouped by their best factor, highest score first. With fewer latents than
    factors every latent is matched and they are ordered by their factor.

    Args:
        matrix: ``(n_latents, n_factors)`` scores, e.g. normalised mutual information.

    Returns:
        ``(n_latents,)`` int row indices.

    Example:
        >>> matching_order([[0.0, 0.1], [0.9, 0.0], [0.0, 0.7]]).tolist()
        [1, 2, 0]
    """
    from scipy.optimize import linear_sum_assignment

    m = _matrix(matrix, "matrix", None)
    rows, cols = linear_sum_assignment(m, maximize=True)
    matched = rows[np.argsort(cols, kind="stable")]
    rest = np.setdiff1d(np.arange(m.shape[0]), matched)
    best = m[rest].argmax(1) if len(rest) else np.zeros(0, np.int64)
    rest = rest[np.lexsort((rest, -m[rest, best] if len(rest) else rest, best))]
    return np.concatenate([matched, rest]).astype(np.int64)


def _heatmap(
    m: np.ndarray, factor_names: Sequence[str] | None, *, order: bool, title: str,
    label: str, latent_names: Sequence[str] | None, cmap: str,
) -> Figure:
    d, k = m.shape
    rows = matching_order(m) if order else np.arange(d)
    names = list(factor_names) if factor_names is not None else [f"factor {i}" for i in range(k)]
    latents = list(latent_names) if latent_names is not None else [f"z{j}" for j in range(d)]
    if len(latents) != d:
        raise ValueError(f"latent_names has {len(latents)} names for {d} latents")
    shown = m[rows]
    vmax = 1.0 if shown.max() <= 1.0 else float(shown.max())
    fig = new_figure(1.6 + 0.75 * k, 1.2 + 0.4 * d)
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(k), names, rotation=30, ha="right")
    ax.set_yticks(range(d), [latents[j] for j in rows])
    ax.set_xlabel("factor")
    ax.set_ylabel("latent")
    ax.set_title(title)
    if d * k <= 400:
        for (i, j), v in np.ndenumerate(shown):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 * vmax else "white")
    fig.colorbar(image, ax=ax, label=label)
    return fig


def mi_heatmap(
    nmi: Any, factor_names: Sequence[str] | None = None, *, order: bool = True,
    title: str = "Mutual information", label: str = "normalised MI",
    latent_names: Sequence[str] | None = None,
) -> Figure:
    """Heatmap of latents (rows) × factors (columns), e.g. InfoMEC's normalised MI.

    Rows are ordered by :func:`matching_order` (``order=True``), so a disentangled
    representation shows a bright diagonal; row labels keep the latents' own indices.

    Args:
        nmi: ``(n_latents, n_factors)`` finite values (colour scale ``[0, 1]`` unless a
            value exceeds 1, e.g. MI in nats).
        factor_names: column labels (default ``factor 0``, ...).
    """
    m = _matrix(nmi, "nmi", factor_names)
    return _heatmap(m, factor_names, order=order, title=title, label=label,
                    latent_names=latent_names, cmap="viridis")


def importance_heatmap(
    importance: Any, factor_names: Sequence[str] | None = None, *, order: bool = True,
    title: str = "DCI importance", latent_names: Sequence[str] | None = None,
) -> Figure:
    """DCI importance matrix ``R`` ``(n_latents, n_factors)`` as a heatmap, rows ordered
    as in :func:`mi_heatmap`."""
    m = _matrix(importance, "importance", factor_names)
    return _heatmap(m, factor_names, order=order, title=title, label="importance",
                    latent_names=latent_names, cmap="magma")


# --------------------------------------------------------------------------- scores


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def score_table(
    payload: Mapping[str, Any], representation: str | None = None
) -> tuple[dict[str, float], dict[str, tuple[float, float]], dict[str, dict[str, float]]]:
    """Scores, intervals and baselines from an ``Evaluation.to_json()`` dict or a run's
    ``metrics.json``.

    Args:
        payload: ``Evaluation.to_json()`` (a ``"metrics"`` section) or ``metrics.json``
            (``"representations"``, each with such a section).
        representation: which representation of ``metrics.json`` (default: the first).

    Returns:
        ``(scores, intervals, baselines)``: score key (``"mig"``,
        ``"dci.completeness"``) → value; key → ``(low, high)``; baseline name → key →
        value. Non-finite or missing values are left out.
    """
    from disentkit.metrics import METRICS

    section: Mapping[str, Any]
    if "representations" in payload:
        reps = payload["representations"] or {}
        if not reps:
            return {}, {}, {}
        name = representation or next(iter(reps))
        if name not in reps:
            raise ValueError(f"no representation {name!r} in {METRICS_NAME}; found {list(reps)}")
        section = reps[name].get("metrics") or {}
    elif "metrics" in payload:
        section = payload["metrics"] or {}
    else:
        raise ValueError(f"expected Evaluation.to_json() (a 'metrics' section) or {METRICS_NAME} "
                         f"('representations'); received keys {sorted(payload)[:8]}")
    scores: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    baselines: dict[str, dict[str, float]] = {}
    for metric, record in section.items():
        if not isinstance(record, Mapping):
            continue
        names = METRICS[metric].score_names if metric in METRICS else ("score",)
        for s in names:
            key = metric if s == "score" else f"{metric}.{s}"
            value = _num(record.get(s))
            if value is None:
                continue
            scores[key] = value
            ci = (record.get("intervals") or {}).get(s)
            if ci is not None and len(ci) == 2 and None not in (_num(ci[0]), _num(ci[1])):
                intervals[key] = (float(ci[0]), float(ci[1]))
            for b, values in (record.get("baselines") or {}).items():
                bv = _num((values or {}).get(s))
                if bv is not None:
                    baselines.setdefault(b, {})[key] = bv
    return scores, intervals, baselines


def score_bars(
    scores: Mapping[str, Any],
    intervals: Mapping[str, Sequence[float]] | None = None,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    *,
    representation: str | None = None,
    title: str | None = None,
) -> Figure:
    """One bar per score, its confidence interval as an error bar, baselines as markers.

    Args:
        scores: score key → value, or a whole ``Evaluation.to_json()`` / ``metrics.json``
            dict (read with :func:`score_table`; ``intervals`` and ``baselines`` then come
            from it).
        intervals: key → ``(low, high)``.
        baselines: baseline name (``"random"``, ``"ground_truth"``) → key → value.
        representation: with ``metrics.json``, which representation (default: the first).
        title: figure title.
    """
    if "metrics" in scores or "representations" in scores:
        scores, intervals, baselines = score_table(scores, representation)
    values = {k: _num(v) for k, v in scores.items()}
    keys = [k for k, v in values.items() if v is not None]
    fig = new_figure(max(4.0, 1.0 + 0.6 * len(keys)), 3.4)
    ax = fig.add_subplot()
    ax.set_title(title or "Scores" + (f" ({representation})" if representation else ""))
    if not keys:
        ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    x = np.arange(len(keys))
    y = np.array([values[k] for k in keys], dtype=np.float64)
    intervals = intervals or {}
    err = np.zeros((2, len(keys)))
    for i, k in enumerate(keys):
        if k in intervals:
            lo, hi = (float(v) for v in intervals[k])
            err[:, i] = (max(y[i] - lo, 0.0), max(hi - y[i], 0.0))
    bars = ax.bar(x, y, color=_ACTIVE, alpha=0.85, label="score")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in y], fontsize=7, padding=2)
    if err.any():
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=3,
                    label="confidence interval")
    for b, per_key in (baselines or {}).items():
        bx = [i for i, k in enumerate(keys) if _num(per_key.get(k)) is not None]
        if not bx:
            continue
        style = _BASELINE_STYLE.get(b, {"marker": "o", "color": "#9467bd", "label": b})
        ax.scatter(bx, [per_key[keys[i]] for i in bx], zorder=3, s=40, **style)
    top = max([1.0, *y.tolist(), *[float(v) for v in (intervals.get(k, (0, 0))[1]
                                                        for k in keys)]])
    low = min(0.0, float(y.min()))
    ax.set_ylim(low, top * 1.05)
    ax.set_xticks(x, keys, rotation=35, ha="right")
    ax.set_ylabel("score")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def factor_bars(
    payload: Mapping[str, Any],
    factor_names: Sequence[str] | None = None,
    *,
    representation: str | None = None,
    title: str | None = None,
) -> Figure | None:
    """Per-factor bar charts: one panel per score that decomposes over factors (MIG's gap,
    DCI completeness and accuracies, SAP, InfoC, InfoE, explicitness), one bar per factor
    with its bootstrap interval, the random and ground-truth baselines as markers.

    Args:
        payload: ``Evaluation.to_json()`` or a run's ``metrics.json`` (the ``per_factor``
            entries :func:`disentkit.evaluate` writes).
        factor_names: names of the user's factor columns (default ``f0, f1, ...``).
        representation: with ``metrics.json``, which representation (default: the first).
        title: figure title.

    Returns:
        The figure, or ``None`` when no score has per-factor values.
    """
    if "representations" in payload:
        reps = payload["representations"] or {}
        if not reps:
            return None
        name = representation or next(iter(reps))
        section = reps[name].get("metrics") or {}
    else:
        section = payload.get("metrics") or {}
    panels = [
        (f"{metric}" if score == "score" else f"{metric}.{score}", entry)
        for metric, record in section.items()
        if isinstance(record, Mapping)
        for score, entry in (record.get("per_factor") or {}).items()
        if entry.get("values")
    ]
    if not panels:
        return None
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig = new_figure(4.2 * n_cols, 2.8 * n_rows)
    fig.suptitle(title or "Scores per factor" + (f" ({representation})" if representation
                                                    else ""))
    for i, (key, entry) in enumerate(panels):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        factors = list(entry.get("factors") or range(len(entry["values"])))
        y = np.array([np.nan if _num(v) is None else v for v in entry["values"]], dtype=float)
        x = np.arange(y.size)
        ax.bar(x, np.nan_to_num(y), color=_ACTIVE, alpha=0.85)
        if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
            lo = np.array(entry["ci_low"], dtype=float)
            hi = np.array(entry["ci_high"], dtype=float)
            err = np.stack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
            ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
        for b, values in (entry.get("baselines") or {}).items():
            if len(values) != y.size:
                continue
            style = _BASELINE_STYLE.get(b, {"marker": "o", "color": "#9467bd", "label": b})
            ax.scatter(x, values, zorder=3, s=30, **style)
        labels = [
            factor_names[f] if factor_names is not None and f < len(factor_names) else f"f{f}"
            for f in factors
        ]
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_ylim(min(0.0, float(np.nanmin(y)) if np.isfinite(y).any() else 0.0), 1.05)
    if any(e.get("baselines") for _, e in panels):
        handles = [
            fig.axes[0].scatter([], [], **_BASELINE_STYLE[b])
            for b in ("random", "ground_truth")
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=7)
    return fig


# --------------------------------------------------------------------------- latents


def codebook_usage(
    indices: Any, n_values: int, *, n_cols: int = 5, title: str = "Codebook usage"
) -> Figure:
    """Per latent, a histogram of how often each codebook index is used.

    Args:
        indices: integer ``(n, D)`` codebook indices in ``[0, n_values)``.
        n_values: codebook entries per latent.
        n_cols: histograms per row.

    Each panel's title gives the entries used and the perplexity ``exp(H)`` of the
    histogram (``n_values`` for uniform use).
    """
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[0] < 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be an integer (n, D) array; received {idx.dtype} "
                         f"{idx.shape}")
    n_values = check_positive_int(n_values, "n_values")
    if idx.min() < 0 or idx.max() >= n_values:
        raise ValueError(f"indices must lie in [0, {n_values}); found [{idx.min()}, "
                         f"{idx.max()}]")
    n, d = idx.shape
    offsets = np.arange(d) * n_values  # one joint bincount for every latent
    counts = np.bincount((idx + offsets).ravel(), minlength=d * n_values).reshape(d, n_values)
    freq = counts / n  # (D, V)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(freq > 0, freq * np.log(freq), 0.0).sum(1)
    cols = min(check_positive_int(n_cols, "n_cols"), d)
    rows = math.ceil(d / cols)
    fig = new_figure(2.2 * cols, 1.8 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for j, ax in enumerate(axes.ravel()):
        if j >= d:
            ax.set_axis_off()
            continue
        used = int((counts[j] > 0).sum())
        ax.bar(np.arange(n_values), freq[j], width=1.0 if n_values > 40 else 0.8,
               color=_ACTIVE if used > 1 else _PASSIVE)
        ax.set_title(f"z{j}: {used}/{n_values} used, ppl {math.exp(entropy[j]):.1f}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.supxlabel("codebook index", fontsize=9)
    fig.supylabel("frequency", fontsize=9)
    return fig


def active_passive(
    activity: Any,
    correlations: Mapping[str, Any] | None = None,
    *,
    active: Any = None,
    threshold: float | None = None,
    criterion: str = "kl",
) -> Figure:
    """Activity of each latent, and mean-vs-sampled correlations of active/passive latents.

    Args:
        activity: ``(D,)`` per-latent statistic: mean KL to the prior in nats
            (``criterion="kl"``), relative variance, or code entropy.
        correlations: optional :meth:`MeanSampledComparison.to_dict()
            <disentkit.metrics.active.MeanSampledComparison.to_dict>`-like mapping with
            ``passive_mean``, ``passive_sampled``, ``active_mean``, ``active_sampled``:
            mean absolute correlation among passive / active latents in the mean and the
            sampled representation (Bonheme & Grzes 2023). Drawn as a second panel.
        active: ``(D,)`` bool; default ``activity >= threshold`` (or ``> 0``).
        threshold: drawn as a dashed line.
        criterion: the axis label: ``"kl"``, ``"variance"`` or ``"entropy"``.
    """
    a = np.asarray(activity, dtype=np.float64).reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"activity must be a non-empty finite (D,) array; received {a}")
    if active is None:
        active = a >= threshold if threshold is not None else a > 0
    act = np.asarray(active, bool).reshape(-1)
    if act.shape != a.shape:
        raise ValueError(f"active has shape {act.shape}; activity has {a.shape}")
    panels = 2 if correlations else 1
    fig = new_figure(max(3.5, 0.45 * a.size + 1.5) + 3.2 * (panels - 1), 3.2)
    axes = fig.subplots(1, panels, squeeze=False, width_ratios=[max(2, a.size), 4][:panels])
    ax = axes[0, 0]
    x = np.arange(a.size)
    ax.bar(x, a, color=np.where(act, _ACTIVE, _PASSIVE))
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_xticks(x, [f"z{j}" for j in x], fontsize=7)
    ax.set_ylabel({"kl": "mean KL to prior (nats)", "variance": "relative variance",
                   "entropy": "code entropy (nats)"}.get(criterion, criterion))
    ax.set_title(f"{int(act.sum())}/{a.size} active (blue), passive in red", fontsize=9)
    if correlations:
        ax2 = axes[0, 1]
        groups = ("passive", "active")
        for i, rep in enumerate(("mean", "sampled")):
            vals = [_num(correlations.get(f"{g}_{rep}")) for g in groups]
            ax2.bar(np.arange(2) + (i - 0.5) * 0.38, [v if v is not None else 0.0 for v in vals],
                    width=0.38, label=rep, color=("#ff7f0e", "#7f7f7f")[i])
        ax2.set_xticks(range(2), groups)
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("mean |correlation|")
        ax2.set_title("mean vs sampled", fontsize=9)
        ax2.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- training


_EVAL_PREFIX = "eval/"
"""Prefix of the ``log/metrics.csv`` columns of scores during training (``eval.every``)."""


def _read_log(csv_path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(steps, {column: values})`` of ``log/metrics.csv``: numbers, NaN where a cell is
    empty or not a number; columns with no number at all left out."""
    path = Path(csv_path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "step" not in rows[0]:
        raise ValueError(f"{str(path)!r} holds no logged steps (expected a 'step' column)")

    def number(v: str | None) -> float:
        try:
            return float(v) if v not in (None, "") else math.nan
        except ValueError:
            return math.nan

    steps = np.array([number(r.get("step")) for r in rows])
    series = {n: np.array([number(r.get(n)) for r in rows]) for n in rows[0] if n != "step"}
    return steps, {n: v for n, v in series.items() if np.isfinite(v).any()}


def _panels(steps: np.ndarray, series: Mapping[str, np.ndarray], *, n_cols: int, title: str,
            empty: str, width: float = 3.0, height: float = 2.2,
            unit_range: bool = False) -> Figure:
    """One small line plot per series against the step; ``unit_range``: the y axis of a
    series whose values all lie in [0, 1] spans [0, 1]."""
    cols = max(1, min(check_positive_int(n_cols, "n_cols"), len(series)))
    rows_n = max(1, math.ceil(len(series) / cols))
    fig = new_figure(width * cols, height * rows_n + 0.4)
    axes = fig.subplots(rows_n, cols, squeeze=False, sharex=True)
    for ax, (name, v) in zip(axes.ravel(), series.items(), strict=False):
        ok = np.isfinite(v) & np.isfinite(steps)
        ax.plot(steps[ok], v[ok], linewidth=1.2, marker="." if ok.sum() < 30 else None)
        if unit_range and ok.any() and v[ok].min() >= 0 and v[ok].max() <= 1:
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(series):]:
        ax.set_axis_off()
    if not series:
        axes[0, 0].text(0.5, 0.5, empty, ha="center", va="center")
    fig.suptitle(title)
    fig.supxlabel("step", fontsize=9)
    return fig


def training_curves(
    csv_path: str | os.PathLike[str], *, n_cols: int = 3, title: str = "Training curves"
) -> Figure:
    """Every logged loss term of ``log/metrics.csv`` against the step, one panel each.

    Columns ``step``, ``epoch`` and ``steps_per_second`` are not plotted, nor the scores
    during training (``eval/...``, see :func:`training_scores`); empty or non-numeric cells
    (terms logged only on some steps) are skipped.
    """
    steps, series = _read_log(csv_path)
    series = {n: v for n, v in series.items()
              if n not in _LOG_SKIP and not n.startswith(_EVAL_PREFIX)}
    return _panels(steps, series, n_cols=n_cols, title=title, empty="no loss terms logged")


def training_scores(
    csv_path: str | os.PathLike[str], *, n_cols: int = 4,
    title: str = "Scores during training",
) -> Figure:
    """Each score logged during training (``eval.every``) against the step, one panel each.

    Reads the ``eval/<representation>/<score key>`` columns of ``log/metrics.csv``; panels
    are titled ``<representation>/<score key>`` (``mean/infomec.infom``). A score whose
    values all lie in [0, 1] is drawn on a [0, 1] axis, so a change reads at its true size.

    Raises:
        ValueError: the log holds no such column (the run was trained without
            ``eval.every``), or no logged step.

    Example:
        >>> import tempfile
        >>> log = Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> _ = log.write_text("step,loss,eval/mean/mig\\n10,0.5,\\n20,0.4,0.31\\n40,0.3,0.42\\n")
        >>> fig = training_scores(log)
        >>> [ax.get_title() for ax in fig.axes]
        ['mean/mig']
    """
    steps, series = _read_log(csv_path)
    scores = {n.removeprefix(_EVAL_PREFIX): v for n, v in series.items()
              if n.startswith(_EVAL_PREFIX)}
    if not scores:
        raise ValueError(
            f"{str(csv_path)!r} holds no scores during training (no 'eval/...' column); "
            "train with eval.every=N (--set eval.every=N) to log them"
        )
    return _panels(steps, scores, n_cols=n_cols, title=title, empty="", width=2.6,
                   height=2.0, unit_range=True)


# --------------------------------------------------------------------------- a whole run


def _heatmap_inputs(metrics: Mapping[str, Any]) -> tuple[Any, Any, str]:
    """(NMI or normalised MI, DCI importance, representation) from ``metrics.json``."""
    reps = metrics.get("representations") or {}
    for kind, entry in reps.items():
        records = (entry or {}).get("metrics") or {}
        nmi = (records.get("infomec") or {}).get("nmi")
        mig = records.get("mig") or {}
        if nmi is None and mig.get("mutual_info") is not None and mig.get("factor_entropy"):
            mi = np.asarray(mig["mutual_info"], dtype=np.float64)
            h = np.asarray(mig["factor_entropy"], dtype=np.float64)
            nmi = mi / np.where(h > 0, h, 1.0)
        importance = (records.get("dci") or {}).get("importance")
        if nmi is not None or importance is not None:
            return nmi, importance, kind
    return None, None, ""


def render_run_figures(
    run_dir: str | os.PathLike[str],
    *,
    n_images: int = 8,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Draw every figure that applies to a run into ``run_dir/figures/``.

    Reads ``model.json`` or ``config.json`` (the dataset), ``model.safetensors`` (via
    :func:`disentkit.train.load_model`), ``metrics.json`` and ``log/metrics.csv`` where
    present; a figure whose input is missing is skipped. Seed images are ``n_images``
    factor configurations drawn with ``dataset.sample_factors(n, default_rng(seed))``;
    marginals and activity use 512 more from the same generator. The same run and seed
    give the same files.

    Files (names are what the report's captions key on): ``traversals.png`` and
    ``traversals.gif`` (3 seed images), ``reconstructions.png``, ``samples.png`` (models
    with a prior), ``mi_heatmap.png``, ``dci_importance.png``, ``scores_<kind>.png`` (one
    per scored representation), ``codebook_usage.png`` (quantized models),
    ``active_passive.png``, ``training_curves.png``, ``training_scores.png`` (runs trained
    with ``eval.every``).

    Args:
        run_dir: the run directory.
        n_images: seed images for reconstructions (traversals use the first 3).
        seed: seeds the images and the prior samples.
        progress: called with a short label before each figure is drawn.

    Returns:
        figure name (file stem, ``traversals_gif`` for the GIF) → path written.
    """
    from disentkit.data import get_dataset
    from disentkit.data.show import max_pixel_value, save_png
    from disentkit.viz import arrays

    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise FileNotFoundError(f"no run directory at {str(run)!r}")
    n_images = check_positive_int(n_images, "n_images")
    layout = RunDir(run)
    out = layout.figures
    written: dict[str, Path] = {}

    def step(label: str) -> None:
        if progress is not None:
            progress(label)

    def put(name: str, fig: Figure) -> None:
        written[name] = save_figure(fig, out / f"{name}.png")

    metrics = None
    if layout.metrics.is_file():
        metrics = read_json(layout.metrics)
    factor_names = None
    if metrics is not None:
        factor_names = (metrics.get("dataset") or {}).get("factor_names")

    if layout.weights.is_file():
        from disentkit.metrics import compare_mean_sampled
        from disentkit.models.saved import load_model, read_model_info
        from disentkit.train.evaluate_run import run_data

        data_name, data_options = run_data(run, read_model_info(run))
        dataset = get_dataset(data_name, **data_options)
        factor_names = factor_names or list(dataset.factor_names)
        model = load_model(run)
        max_value = max_pixel_value(dataset)
        rng = np.random.default_rng(seed)
        images = dataset.images_from_factors(dataset.sample_factors(n_images, rng))
        marginal = dataset.images_from_factors(dataset.sample_factors(512, rng))

        step("traversals")
        plan = arrays.traversal_plan(model, images[:3], marginal_images=marginal,
                                     max_value=max_value)
        written["traversals"] = save_png(arrays.traversal_grid(model, images[:3], plan=plan),
                                         out / "traversals.png")
        written["traversals_gif"] = arrays.save_gif(
            arrays.traversal_frames(model, images[:3], plan=plan), out / "traversals.gif")

        step("reconstructions")
        written["reconstructions"] = save_png(
            arrays.reconstruction_grid(model, images, max_value=max_value),
            out / "reconstructions.png")

        step("prior samples")
        samples = arrays.prior_samples(model, 16, seed)
        if samples is not None:
            written["samples"] = save_png(samples, out / "samples.png")

        enc = arrays._encode(model, marginal, max_value)
        if enc["indices"] is not None and plan.kind == "codebook":
            step("codebook usage")
            n_values = int(enc["indices"].max()) + 1
            quantizer = getattr(model, "quantizer", None)
            n_values = max(n_values, int(getattr(quantizer, "n_codes", 0) or 0))
            put("codebook_usage", codebook_usage(enc["indices"].numpy(), n_values))

        step("active latents")
        correlations = None
        if enc["logvar"] is not None:
            correlations = compare_mean_sampled(enc["mean"].double().numpy(),
                                                enc["logvar"].double().numpy(),
                                                seed=seed).to_dict()
        threshold = 0.01 if plan.criterion in ("kl", "variance") else None
        put("active_passive", active_passive(plan.activity, correlations, active=plan.active,
                                             threshold=threshold, criterion=plan.criterion))

    if metrics is not None:
        nmi, importance, kind = _heatmap_inputs(metrics)
        if nmi is not None:
            step("MI heatmap")
            put("mi_heatmap", mi_heatmap(nmi, factor_names,
                                         title=f"Normalised mutual information ({kind})"))
        if importance is not None:
            step("DCI importance")
            put("dci_importance", importance_heatmap(importance, factor_names,
                                                     title=f"DCI importance ({kind})"))
        for kind in metrics.get("representations") or {}:
            step(f"scores ({kind})")
            put(f"scores_{kind}", score_bars(metrics, representation=kind,
                                             title=f"Scores ({kind} representation)"))
            per_factor = factor_bars(metrics, factor_names, representation=kind,
                                     title=f"Scores per factor ({kind} representation)")
            if per_factor is not None:
                put(f"factor_scores_{kind}", per_factor)

    csv_path = layout.metrics_csv
    if csv_path.is_file():
        step("training curves")
        try:
            put("training_curves", training_curves(csv_path))
        except ValueError:  # an empty log (no step logged yet): nothing to draw
            pass
        with open(csv_path, encoding="utf-8") as fh:
            header = fh.readline()
        if _EVAL_PREFIX in header:
            step("scores during training")
            put("training_scores", training_scores(csv_path))
    return written
