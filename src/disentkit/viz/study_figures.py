"""Figures of a study: scores across runs, hyper-parameter effects, agreement between
metrics, seed variance, and the reconstruction/disentanglement trade-off.

Every function takes the study's results table (a :class:`pandas.DataFrame`, one row per
run: ``model``, ``dataset``, ``seed``, ``status``, ``hp.<key>``, ``score.<key>``,
``recon.<error>``, ...) and returns a :class:`matplotlib.figure.Figure` drawn on an Agg
canvas, styled and saved like the figures of one run (:mod:`disentkit.viz.figures`). Only
finished runs (``status == "done"``) are plotted; failed and pending runs have no scores.

Runs are grouped by model, or by model and dataset when the study covers several
datasets (scores of different datasets are not comparable). Each group keeps one colour
in every figure.

"Main scores" (:func:`main_scores`) are the ``score.*`` columns that are neither bootstrap
interval bounds nor diagnostics; pass ``metrics=[...]`` to any function to choose others.
:func:`render_study_figures` writes every figure that applies to a folder of PNGs.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({
    ...     "model": ["vae", "vae", "qlae", "qlae"], "status": ["done"] * 4,
    ...     "score.mig": [0.1, 0.2, 0.4, 0.3], "score.mig.ci_low": [0.0, 0.1, 0.3, 0.2],
    ...     "score.dci.disentanglement": [0.2, 0.3, 0.5, 0.6],
    ...     "score.dci.informativeness_train": [0.9, 0.9, 0.9, 0.9]})
    >>> main_scores(table)
    ['score.mig', 'score.dci.disentanglement']
    >>> rank_correlations(table).round(2).to_numpy().tolist()
    [[1.0, 0.8], [0.8, 1.0]]
    >>> fig = score_distributions(table)
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from disentkit.viz.figures import new_figure, save_figure

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "PREFERRED_SCORES",
    "done_runs",
    "format_value",
    "hp_columns",
    "hyperparameter_effects",
    "main_scores",
    "model_groups",
    "paired_differences",
    "rank_correlation_heatmap",
    "rank_correlations",
    "reconstruction_tradeoff",
    "render_study_figures",
    "score_distributions",
    "seed_spread",
    "seed_variance",
]

SCORE_PREFIX = "score."
HP_PREFIX = "hp."
PREFERRED_SCORES = ("score.infomec.infom", "score.dci.disentanglement", "score.mig")
"""Disentanglement scores shown first (trade-off plot) and ranked by default (report)."""
_DIAGNOSTIC_PARTS = ("train_accuracy", "informativeness_train", ".ci_")
"""Score columns containing one of these are diagnostics or interval bounds."""
_DIAGNOSTIC_SUFFIXES = (".train", ".metric_id")
"""Score columns ending so are diagnostics (``explicitness.train``: training accuracy)."""
_RECON_COLUMNS = ("recon.bce_per_pixel", "recon.mse_per_pixel")
_BASELINE_STYLE = {
    "random": {"color": "#555555", "linestyle": "--", "label": "random baseline (median)"},
    "ground_truth": {"color": "#2ca02c", "linestyle": ":",
                     "label": "ground-truth baseline (median)"},
}
#: Violins instead of boxes when every group has at least this many runs.
_VIOLIN_MIN = 12


# --------------------------------------------------------------------------- the table


def _pd() -> Any:
    import pandas

    return pandas


def done_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The finished runs: rows whose ``status`` is ``"done"`` (every row without a
    ``status`` column)."""
    if "status" not in results.columns:
        return results.reset_index(drop=True)
    return results[results["status"].astype(str) == "done"].reset_index(drop=True)


def _numeric(results: pd.DataFrame, column: str) -> pd.Series:
    return _pd().to_numeric(results[column], errors="coerce").astype(np.float64)


def _is_score_column(results: pd.DataFrame, column: str) -> bool:
    pd = _pd()
    series = results[column]
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def main_scores(results: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """The score columns a study's figures and table show.

    Args:
        results: the results table.
        metrics: score names, with or without the ``score.`` prefix (``"mig"``,
            ``"score.dci.completeness"``); default: every numeric ``score.*`` column with
            at least one finite value, except interval bounds (``.ci_low``, ``.ci_high``)
            and diagnostics (names containing ``train_accuracy`` or
            ``informativeness_train``, or ending in ``.train``), in table order.

    Returns:
        column names, each starting with ``score.``.

    Raises:
        ValueError: a name in ``metrics`` is not a column of the table, or ``metrics`` is
            empty.
    """
    if metrics is None:
        return [
            c for c in results.columns
            if isinstance(c, str) and c.startswith(SCORE_PREFIX)
            and not any(part in c for part in _DIAGNOSTIC_PARTS)
            and not c.endswith(_DIAGNOSTIC_SUFFIXES)
            and _is_score_column(results, c) and np.isfinite(_numeric(results, c)).any()
        ]
    if isinstance(metrics, str):
        metrics = [metrics]
    if not metrics:
        raise ValueError("metrics must name at least one score; received an empty list")
    columns: list[str] = []
    for name in metrics:
        column = name if str(name).startswith(SCORE_PREFIX) else f"{SCORE_PREFIX}{name}"
        if column not in results.columns:
            known = [c.removeprefix(SCORE_PREFIX) for c in results.columns
                     if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
            raise ValueError(f"no score {name!r} in the results table; its scores are "
                             f"{known}")
        if column not in columns:
            columns.append(column)
    return columns


def hp_columns(results: pd.DataFrame) -> list[str]:
    """The ``hp.*`` columns (swept hyper-parameters) with at least one value set."""
    return [c for c in results.columns
            if isinstance(c, str) and c.startswith(HP_PREFIX) and results[c].notna().any()]


def model_groups(results: pd.DataFrame) -> pd.Series:
    """Each run's group label: its model, or ``"<model> on <dataset>"`` when the table
    covers several datasets."""
    models = results["model"].astype(str)
    if "dataset" in results.columns and results["dataset"].nunique(dropna=True) > 1:
        return models + " on " + results["dataset"].astype(str)
    return models


def _palette(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_)


def format_value(value: Any) -> str:
    """A hyper-parameter value as a short label: ``4.0`` → ``"4"``, ``1e-3`` →
    ``"0.001"``, strings unchanged, missing → ``"—"``.

    Example:
        >>> [format_value(v) for v in (4.0, 0.001, 16, "conv", float("nan"), 2.5e-5)]
        ['4', '0.001', '16', 'conv', '—', '2.5e-05']
    """
    if value is None or (_is_number(value) and math.isnan(float(value))):
        return "—"
    if _is_number(value):
        return f"{float(value):g}" if isinstance(value, float | np.floating) else str(value)
    return str(value)


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    """Distinct values, numbers (and numeric strings) in numeric order, then the rest by
    label."""
    return sorted(values, key=_order_key)


def _short(column: str) -> str:
    return column.removeprefix(SCORE_PREFIX).removeprefix(HP_PREFIX)


def _jitter(n: int, width: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-width, width, n)


def _grid(n: int, n_cols: int) -> tuple[int, int]:
    cols = max(1, min(n_cols, n))
    return math.ceil(n / cols), cols


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _distribution(ax: Any, data: list[np.ndarray], colors: list[Any], *,
                  violin_min: int) -> None:
    """Boxes (violins when every group is large and varies) with the runs as points."""
    positions = [i for i, d in enumerate(data) if d.size]
    filled = [data[i] for i in positions]
    if not filled:
        return
    if all(d.size >= violin_min and np.ptp(d) > 0 for d in filled):
        parts = ax.violinplot(filled, positions=positions, widths=0.7, showmedians=True)
        for body, i in zip(parts["bodies"], positions, strict=True):
            body.set_facecolor(colors[i])
            body.set_alpha(0.3)
    else:
        ax.boxplot(filled, positions=positions, widths=0.5, showfliers=False,
                   manage_ticks=False, medianprops={"color": "black"})
    for k, i in enumerate(positions):
        d = data[i]
        ax.scatter(i + _jitter(d.size, 0.14, seed=k), d, s=14, color=colors[i], alpha=0.85,
                   zorder=3, linewidths=0)


# --------------------------------------------------------------------------- figures


def score_distributions(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    n_cols: int = 3,
    violin_min: int = _VIOLIN_MIN,
    title: str = "Scores per model",
) -> Figure:
    """One panel per main score: its distribution over the finished runs of each model.

    Each model (x axis) gets a box plot (a violin when every model has ``violin_min`` runs
    or more) with its runs drawn on top as jittered points. Where the table holds
    ``baseline.random.<key>`` / ``baseline.ground_truth.<key>`` columns, their medians are
    drawn as horizontal lines.

    Args:
        results: the results table.
        metrics: scores to show (default :func:`main_scores`).
        n_cols: panels per row.
        violin_min: runs per model from which violins replace boxes.
        title: figure title (the number of finished runs is appended).
    """
    done = done_runs(results)
    columns = main_scores(results, metrics)
    labels = model_groups(done)
    groups = sorted(labels.unique())
    colors = _palette(groups)
    rows, cols = _grid(len(columns), n_cols)
    width = max(2.8, 0.75 * len(groups) + 1.3)
    fig = new_figure(width * cols, 2.5 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    drawn: dict[str, Any] = {}
    for ax, column in zip(axes.ravel(), columns, strict=False):
        values = _numeric(done, column)
        data = [values[labels == g].dropna().to_numpy() for g in groups]
        ax.set_title(_short(column), fontsize=9)
        if not any(d.size for d in data):
            _empty(ax, "no finished run has this score")
            continue
        _distribution(ax, data, [colors[g] for g in groups], violin_min=violin_min)
        for kind, style in _BASELINE_STYLE.items():
            base = f"baseline.{kind}.{_short(column)}"
            if base in done.columns and np.isfinite(_numeric(done, base)).any():
                drawn[kind] = ax.axhline(float(_numeric(done, base).median()), linewidth=1,
                                         **style)
        ax.set_xticks(range(len(groups)), groups, fontsize=7,
                      rotation=30 if max(map(len, groups)) > 8 else 0,
                      ha="right" if max(map(len, groups)) > 8 else "center")
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.ravel()[len(columns):]:
        ax.set_axis_off()
    if drawn:
        fig.legend(handles=list(drawn.values()), loc="outside lower center", ncol=2,
                   fontsize=7)
    fig.suptitle(f"{title} ({len(done)} finished runs)")
    return fig


def hyperparameter_effects(
    results: pd.DataFrame,
    hp: str,
    metrics: Sequence[str] | None = None,
    *,
    n_cols: int = 4,
    title: str | None = None,
) -> Figure:
    """Scores against the values of one hyper-parameter, for each model that sets it.

    One panel per (model, score): a box per value of the hyper-parameter (values in
    numeric order, evenly spaced, so log-spaced sweeps read well), the runs as points.
    Models whose runs leave the column empty (NaN) are left out.

    Args:
        results: the results table.
        hp: the column, with or without the ``hp.`` prefix (``"hp.model.beta"``,
            ``"model.beta"``).
        metrics: scores to show (default :func:`main_scores`).
        n_cols: panels per row; each model starts a new row.
        title: figure title (default: the hyper-parameter's name).

    Raises:
        ValueError: ``hp`` is not a column, or no finished run sets it.
    """
    column = hp if hp.startswith(HP_PREFIX) else f"{HP_PREFIX}{hp}"
    if column not in results.columns:
        raise ValueError(f"no hyper-parameter {hp!r} in the results table; its "
                         f"hyper-parameters are {[_short(c) for c in hp_columns(results)]}")
    done = done_runs(results)
    columns = main_scores(results, metrics)
    labels = model_groups(done)
    groups = sorted(labels[done[column].notna()].unique())
    if not groups:
        raise ValueError(f"no finished run sets {column!r}")
    colors = _palette(sorted(labels.unique()))
    rows_per_model, cols = _grid(len(columns), n_cols)
    n_values = max(done.loc[labels == g, column].dropna().nunique() for g in groups)
    fig = new_figure(max(2.6, 0.45 * n_values + 1.4) * cols,
                  2.3 * rows_per_model * len(groups) + 0.6)
    axes = fig.subplots(rows_per_model * len(groups), cols, squeeze=False)
    for m, group in enumerate(groups):
        runs = done[(labels == group) & done[column].notna()]
        values = _sorted_values(list(runs[column].unique()))
        tick_labels = [format_value(v) for v in values]
        block = axes[m * rows_per_model:(m + 1) * rows_per_model].ravel()
        for ax, score in zip(block, columns, strict=False):
            y = _numeric(runs, score)
            data = [y[runs[column] == v].dropna().to_numpy() for v in values]
            ax.set_title(f"{group}: {_short(score)}", fontsize=8)
            if not any(d.size for d in data):
                _empty(ax, "no finished run has this score")
                continue
            _distribution(ax, data, [colors[group]] * len(values), violin_min=_VIOLIN_MIN)
            ax.set_xticks(range(len(values)), tick_labels, fontsize=7,
                          rotation=30 if max(map(len, tick_labels)) > 5 else 0)
            ax.set_xlim(-0.6, len(values) - 0.4)
            ax.set_xlabel(_short(column), fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
        for ax in block[len(columns):]:
            ax.set_axis_off()
    fig.suptitle(title or f"Scores against {_short(column)}")
    return fig


def rank_correlations(
    results: pd.DataFrame, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """Spearman rank correlation between scores over the finished runs.

    Computed with ``DataFrame.corr(method="spearman")`` on pairwise-complete runs: each
    pair of scores is ranked over the runs that have both. A score that is constant over
    those runs has no defined correlation: its row and column are NaN (its diagonal
    entry included).

    Args:
        results: the results table.
        metrics: scores to correlate (default :func:`main_scores`).

    Returns:
        square ``(k, k)`` frame indexed both ways by the score columns.
    """
    done = done_runs(results)
    columns = main_scores(results, metrics)
    table = done[columns].apply(_pd().to_numeric, errors="coerce").astype(np.float64)
    return table.corr(method="spearman")


def rank_correlation_heatmap(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    title: str = "Rank correlation between scores",
) -> Figure:
    """:func:`rank_correlations` as an annotated heatmap (diverging colours, −1 to 1).

    Pairs of metrics that agree on which runs are better show dark red; metrics that
    disagree, blue. Undefined correlations (a constant score) are left blank and a note
    under the matrix names the constant scores.
    """
    corr = rank_correlations(results, metrics)
    done = done_runs(results)
    names = [_short(c) for c in corr.columns]
    k = len(names)
    m = corr.to_numpy(dtype=np.float64)
    from matplotlib import colormaps

    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    fig = new_figure(max(3.6, 2.2 + 0.62 * k), max(3.0, 1.7 + 0.5 * k))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-1.0, vmax=1.0)
    if k <= 30:
        for (i, j), v in np.ndenumerate(m):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(k), names, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    fig.colorbar(image, ax=ax, label="Spearman ρ", shrink=0.8)
    if not np.isfinite(m).all():
        constant = [_short(c) for c in corr.columns
                    if _numeric(done, c).dropna().nunique() <= 1]
        why = (f"constant over the finished runs: {', '.join(constant)}" if constant
               else "too few runs with both scores")
        ax.set_xlabel(f"blank: undefined ({why})", fontsize=7)
    ax.set_title(f"{title} ({len(done)} finished runs)", fontsize=10)
    return fig


def _setting_keys(done: pd.DataFrame) -> list[str]:
    keys = [c for c in ("dataset", "model", "representation") if c in done.columns]
    return keys + hp_columns(done)


def _setting_label(row: pd.Series, group: str, hps: Sequence[str]) -> str:
    parts = [f"{_short(c)}={format_value(row[c])}" for c in hps if not _is_missing(row[c])]
    return f"{group}: {', '.join(parts)}" if parts else group


def _order_key(value: Any) -> tuple[int, float, str]:
    """Sort key of a hyper-parameter value: numbers in numeric order, then strings, then
    missing values."""
    if _is_missing(value):
        return (2, 0.0, "")
    if _is_number(value):
        return (0, float(value), "")
    try:  # mixed columns are stored as strings in Parquet: "16" still sorts after "8"
        return (0, float(str(value)), str(value))
    except ValueError:
        return (1, 0.0, str(value))


def _is_missing(value: Any) -> bool:
    return value is None or (_is_number(value) and math.isnan(float(value)))


def _settings(done: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(label, model group, runs)`` per setting (every configuration key but the seed)."""
    keys = _setting_keys(done)
    if done.empty:
        return []
    labels = model_groups(done)
    hps = hp_columns(done)
    out = []
    for _, runs in done.groupby(keys, dropna=False, sort=False):
        first = runs.iloc[0]
        group = labels.loc[runs.index[0]]
        order = tuple(_order_key(first[c]) for c in hps)
        out.append(((group, order), (_setting_label(first, group, hps), group, runs)))
    return [entry for _, entry in sorted(out, key=lambda t: t[0])]


def seed_spread(
    results: pd.DataFrame, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """Spread of each score across seeds, per setting.

    A setting is every configuration column but the seed: ``dataset``, ``model``,
    ``representation`` and the ``hp.*`` columns (a missing value is a value). Only
    finished runs count.

    Returns:
        one row per setting: ``setting`` (a label), ``n_seeds``, and per score column its
        standard deviation over the setting's runs (``ddof=1``; NaN with one run).
    """
    columns = main_scores(results, metrics)
    rows = []
    for label, _, runs in _settings(done_runs(results)):
        row: dict[str, Any] = {"setting": label, "n_seeds": len(runs)}
        for c in columns:
            row[c] = float(_numeric(runs, c).std(ddof=1))
        rows.append(row)
    return _pd().DataFrame(rows, columns=["setting", "n_seeds", *columns])


def seed_variance(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    n_cols: int = 4,
    title: str = "Variation across seeds",
) -> Figure:
    """Per setting (model and hyper-parameters), each score of every seed.

    One panel per score, the settings as rows (named in the first panel of each row of
    panels): each seed a point, a line from the lowest to the highest seed, a tick at
    their mean. The panel title gives the median over settings of the standard deviation
    across seeds (:func:`seed_spread`): a gap between models smaller than that is within
    seed noise.

    Args:
        results: the results table.
        metrics: scores to show (default :func:`main_scores`).
        n_cols: panels per row.
        title: figure title.
    """
    columns = main_scores(results, metrics)
    done = done_runs(results)
    settings = _settings(done)
    spread = seed_spread(results, columns)
    colors = _palette(sorted(model_groups(done).unique()))
    n = max(1, len(settings))
    rows, cols = _grid(len(columns), n_cols)
    longest = max((len(label) for label, _, _ in settings), default=4)
    fig = new_figure(2.4 * cols + 0.065 * min(longest, 60) + 0.4, (0.24 * n + 0.9) * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for p, (ax, column) in enumerate(zip(axes.ravel(), columns, strict=False)):
        for i, (_, group, runs) in enumerate(settings):
            x = _numeric(runs, column).dropna().to_numpy()
            if not x.size:
                continue
            ax.hlines(i, x.min(), x.max(), color=colors[group], linewidth=2, alpha=0.45)
            ax.scatter(x, i + _jitter(x.size, 0.12, seed=i), s=13, color=colors[group],
                       zorder=3, linewidths=0)
            ax.scatter([x.mean()], [i], marker="|", s=140, color="black", zorder=4)
        med = spread[column].median() if column in spread else math.nan
        note = f"median std {med:.2g}" if np.isfinite(med) else "one seed per setting"
        ax.set_title(f"{_short(column)}\n({note})", fontsize=8)
        ax.set_yticks(range(len(settings)), [label for label, _, _ in settings], fontsize=7)
        ax.tick_params(axis="y", labelleft=p % cols == 0)
        ax.tick_params(axis="x", labelsize=7)
    if settings:
        axes[0, 0].set_ylim(len(settings) - 0.5, -0.5)  # first setting on top
    for ax in axes.ravel()[len(columns):]:
        ax.set_axis_off()
    fig.suptitle(title)
    return fig


def paired_differences(
    paired: pd.DataFrame,
    *,
    labels: dict[str, str] | None = None,
    n_cols: int = 4,
    title: str | None = None,
) -> Figure:
    """Each model's difference to a reference model with its interval, one panel per score.

    Args:
        paired: a :func:`disentkit.study.tables.paired_comparison` frame (``dataset``,
            ``model``, ``reference``, ``metric``, ``method``, ``difference``, ``ci_low``,
            ``ci_high``).
        labels: panel titles per ``metric`` (default: the metric key).
        n_cols: panels per row.
        title: figure title (default ``"Difference to <reference>"``).

    Returns:
        a figure: per panel each (dataset, model) a row with its difference as a point and
        its interval as a line (a hollow point: no interval), a dashed line at 0. A Welch
        interval is drawn dashed, a paired one solid.

    Raises:
        ValueError: ``paired`` has no rows.
    """
    if paired is None or len(paired) == 0:
        raise ValueError("paired must hold at least one comparison; received an empty "
                         "table (does the study have a second model beside the reference?)")
    metrics = list(dict.fromkeys(paired["metric"]))
    several = paired["dataset"].nunique() > 1
    rows_of = list(dict.fromkeys(zip(paired["dataset"], paired["model"], strict=True)))
    names = [f"{m} on {d}" if several else str(m) for d, m in rows_of]
    colors = _palette(list(dict.fromkeys(paired["model"])))
    rows, cols = _grid(len(metrics), n_cols)
    longest = max((len(n) for n in names), default=4)
    fig = new_figure(2.4 * cols + 0.065 * min(longest, 60) + 0.4,
                  (0.28 * len(rows_of) + 0.9) * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for p, (ax, metric) in enumerate(zip(axes.ravel(), metrics, strict=False)):
        sub = paired[paired["metric"] == metric]
        ax.axvline(0.0, color="#555555", linestyle="--", linewidth=0.8)
        for i, key in enumerate(rows_of):
            hit = sub[(sub["dataset"] == key[0]) & (sub["model"] == key[1])]
            if hit.empty or not np.isfinite(float(hit["difference"].iloc[0])):
                continue
            r = hit.iloc[0]
            color = colors[key[1]]
            bounded = np.isfinite([r["ci_low"], r["ci_high"]]).all()
            if bounded:
                ax.hlines(i, r["ci_low"], r["ci_high"], color=color, linewidth=2,
                          linestyles="--" if r["method"] == "welch" else "-")
            ax.scatter([r["difference"]], [i], s=22, zorder=3, color=color if bounded
                       else "white", edgecolors=color)
        label = (labels or {}).get(metric, metric)
        ax.set_title(label, fontsize=8)
        ax.set_yticks(range(len(rows_of)), names, fontsize=7)
        ax.tick_params(axis="y", labelleft=p % cols == 0)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].set_ylim(len(rows_of) - 0.5, -0.5)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_axis_off()
    reference = str(paired["reference"].iloc[0])
    fig.suptitle(title or f"Difference to {reference} (mean of model − mean of {reference})")
    return fig


def _preferred(columns: Sequence[str], n: int) -> list[str]:
    first = [c for c in PREFERRED_SCORES if c in columns]
    return (first + [c for c in columns if c not in first])[:n]


def _recon_column(done: pd.DataFrame) -> str | None:
    for column in _RECON_COLUMNS:
        if column in done.columns and np.isfinite(_numeric(done, column)).any():
            return column
    return None


def reconstruction_tradeoff(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    max_scores: int = 3,
    title: str = "Reconstruction vs disentanglement",
) -> Figure | None:
    """Reconstruction error against disentanglement scores, one point per finished run.

    The error is ``recon.bce_per_pixel`` (``recon.mse_per_pixel`` when no run has a
    binary cross-entropy); points are coloured by model. Good runs sit top left.

    Args:
        results: the results table.
        metrics: candidate scores (default :func:`main_scores`); the first ``max_scores``
            are shown, InfoM, DCI disentanglement and MIG first when present.
        max_scores: panels (1 to 3 read well).
        title: figure title.

    Returns:
        the figure, or ``None`` when no finished run has a reconstruction error.
    """
    done = done_runs(results)
    recon = _recon_column(done)
    if recon is None:
        return None
    columns = _preferred(main_scores(results, metrics), max(1, int(max_scores)))
    labels = model_groups(done)
    groups = sorted(labels.unique())
    colors = _palette(groups)
    fig = new_figure(3.2 * max(1, len(columns)) + 0.4, 3.3)
    axes = fig.subplots(1, max(1, len(columns)), squeeze=False).ravel()
    x = _numeric(done, recon)
    handles = {}
    for ax, column in zip(axes, columns, strict=False):
        y = _numeric(done, column)
        for g in groups:
            ok = (labels == g) & x.notna() & y.notna()
            if ok.any():
                handles[g] = ax.scatter(x[ok], y[ok], s=18, color=colors[g], label=g,
                                        alpha=0.85, linewidths=0)
        ax.set_xlabel(f"{recon.removeprefix('recon.')} (lower is better)", fontsize=8)
        ax.set_ylabel(_short(column), fontsize=8)
        ax.tick_params(labelsize=7)
    if handles:
        fig.legend(handles=list(handles.values()), loc="outside right center", fontsize=7)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- all of them


def _file_name(hp: str) -> str:
    return "hp_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", _short(hp))


def _plan(
    results: pd.DataFrame, metrics: Sequence[str] | None
) -> list[tuple[str, str, Callable[[], Figure | None]]]:
    """``(file stem, progress label, draw)`` for every figure that applies to the table."""
    done = done_runs(results)
    columns = main_scores(results, metrics)
    if done.empty or not columns:
        return []
    plan: list[tuple[str, str, Callable[[], Figure | None]]] = [
        ("score_distributions", "score distributions",
         lambda: score_distributions(results, columns)),
    ]
    for hp in hp_columns(done):
        plan.append((_file_name(hp), f"hyper-parameter {_short(hp)}",
                     lambda hp=hp: hyperparameter_effects(results, hp, columns)))
    if len(columns) >= 2 and len(done) >= 3:
        plan.append(("rank_correlation", "rank correlations",
                     lambda: rank_correlation_heatmap(results, columns)))
    if any(len(runs) > 1 for _, _, runs in _settings(done)):
        plan.append(("seed_variance", "seed variance", lambda: seed_variance(results, columns)))
    if _recon_column(done) is not None:
        plan.append(("reconstruction_tradeoff", "reconstruction trade-off",
                     lambda: reconstruction_tradeoff(results, columns)))
    return plan


def render_study_figures(
    results: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Draw every study figure that applies to ``results`` into ``out_dir`` as PNGs.

    Files: ``score_distributions.png``; ``hp_<key>.png`` per swept hyper-parameter;
    ``rank_correlation.png`` (two scores or more, three finished runs or more);
    ``seed_variance.png`` (some setting run with several seeds);
    ``reconstruction_tradeoff.png`` (reconstruction errors in the table). Nothing is drawn
    without finished runs.

    Args:
        results: the results table.
        out_dir: folder of the PNGs (created).
        metrics: scores to show (default :func:`main_scores`).
        progress: called with a short label before each figure.

    Returns:
        file stem → path written.
    """
    out = Path(out_dir).expanduser()
    written: dict[str, Path] = {}
    for name, label, draw in _plan(results, metrics):
        if progress is not None:
            progress(label)
        fig = draw()
        if fig is not None:
            written[name] = save_figure(fig, out / f"{name}.png")
    return written
