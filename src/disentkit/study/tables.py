"""Paper-style tables of a study: mean ± 95 % interval over seeds, the best per column,
and each model's paired difference to a reference model.

Both tables are computed from the study's results table (one row per run; see
:mod:`disentkit.study.results`) by pure functions, over finished runs only
(``status == "done"``):

- :func:`paper_table`: per dataset, model (setting) and score, the number of seeds ``n``
  with a finite value, their mean and the two-sided Student-t interval
  ``mean ± t.ppf((1 + confidence) / 2, n − 1) · s / √n`` (``s`` the sample standard
  deviation, ``ddof=1``; no interval for ``n = 1``), and ``best``: the highest mean per
  dataset and score, or the lowest where the metric registry says lower is better
  (ties are all marked).
- :func:`paired_comparison`: per dataset, model and score, the difference of means
  ``model − reference`` with its interval. When both have finite values for the same
  seeds (each seed once), the interval is the t-interval of the per-seed differences
  (``method = "paired"``); otherwise Welch's interval for two independent samples
  (``method = "welch"``, Welch–Satterthwaite degrees of freedom). With fewer than two
  values (pairs) there is no interval.
- :func:`paper_markdown`: both as Markdown tables, one per dataset, ready to paste.

A "model" here is a setting: runs of one model with the same swept hyper-parameters
(``hp.*`` columns). When a model was run with several settings on a dataset, its label
names them (``beta_vae (beta=4)``); otherwise it is the model's name.

Example:
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"model": ["qlae"] * 3 + ["ae"] * 3, "seed": [0, 1, 2] * 2,
    ...     "status": ["done"] * 6, "dataset": ["shapes3d"] * 6,
    ...     "score.infomec.infom": [0.8, 0.7, 0.9, 0.5, 0.6, 0.7]})
    >>> table = paper_table(runs)
    >>> table[["model", "n", "mean", "best"]].round(3).to_dict("records")
    [{'model': 'qlae', 'n': 3, 'mean': 0.8, 'best': True}, {'model': 'ae', 'n': 3, 'mean': 0.6, 'best': False}]
    >>> pair = paired_comparison(runs, reference="qlae")
    >>> pair[["model", "method", "difference"]].round(3).to_dict("records")
    [{'model': 'ae', 'method': 'paired', 'difference': -0.2}]
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from disentkit.metrics import METRICS
from disentkit.metrics import score_label as metrics_score_label
from disentkit.study.results import FACTOR_PREFIX
from disentkit.viz.study_figures import (
    _short,
    done_runs,
    format_value,
    hp_columns,
    main_scores,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FACTOR_COLUMNS",
    "PAIRED_COLUMNS",
    "PAPER_COLUMNS",
    "PAPER_SCORES",
    "factor_table",
    "format_cell",
    "higher_is_better",
    "paired_comparison",
    "paper_markdown",
    "paper_scores",
    "paper_table",
    "score_label",
    "wide_factor_table",
    "wide_paired_table",
    "wide_paper_table",
]

PAPER_SCORES = ("score.infomec.infom", "score.infomec.infoe", "score.infomec.infoc",
                "score.dci.disentanglement", "score.dci.completeness",
                "score.dci.informativeness_test", "score.mig")
"""The scores of the paper-style table, in this order, where the results table has them."""
PAPER_COLUMNS = ("dataset", "model", "metric", "n", "mean", "ci_low", "ci_high", "best")
"""Columns of :func:`paper_table`."""
FACTOR_COLUMNS = ("dataset", "model", "metric", "factor", "n", "mean", "ci_low", "ci_high",
                  "best")
"""Columns of :func:`factor_table`."""

PAIRED_COLUMNS = ("dataset", "model", "reference", "metric", "method", "n", "n_reference",
                  "difference", "ci_low", "ci_high")
"""Columns of :func:`paired_comparison`."""
_NO_DATASET = "—"


def higher_is_better(column: str) -> bool:
    """Direction of a score (``score.dci.disentanglement`` or ``dci.disentanglement``)
    from the metric registry; higher when the metric or score is unknown.

    Example:
        >>> higher_is_better("score.mig"), higher_is_better("unsupervised.mutual_info")
        (True, False)
    """
    metric, _, score = _short(column).partition(".")
    if metric not in METRICS:
        return True
    for info in METRICS[metric].scores:
        if info.name == (score or "score"):
            return bool(info.higher_is_better)
    return True


def score_label(metric: str) -> str:
    """A short column label, as the metric declares it (:func:`disentkit.metrics.
    score_label`): ``infomec.infom`` → ``InfoM``, others unchanged.

    Example:
        >>> score_label("score.dci.disentanglement"), score_label("sap")
        ('DCI-D', 'SAP')
    """
    return metrics_score_label(_short(metric))


def paper_scores(results: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """The score columns of the paper-style table.

    Args:
        results: the results table.
        metrics: score names with or without ``score.`` (``"mig"``,
            ``"dci.completeness"``); default: those of :data:`PAPER_SCORES` with a finite
            value in a finished run, else every main score
            (:func:`disentkit.viz.study_figures.main_scores`).

    Raises:
        ValueError: a named score is not a column of the table.
    """
    if metrics is not None:
        return main_scores(results, metrics)
    done = done_runs(results)
    present = [c for c in PAPER_SCORES if c in done.columns
               and np.isfinite(_values(done, c)).any()]
    return present or main_scores(results)


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def _settings(done: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(dataset, model label, runs)`` per setting, datasets and models in table order."""
    import pandas as pd

    hps = hp_columns(done)
    frame = done.assign(
        _dataset=(done["dataset"].astype(str) if "dataset" in done.columns
                  else _NO_DATASET),
        _hp=[tuple((_short(c).removeprefix("model."), format_value(_plain(row[c])))
                   for c in hps if not _missing(row[c])) for _, row in done.iterrows()],
    )
    out = []
    datasets = list(dict.fromkeys(frame["_dataset"]))
    for dataset in datasets:
        sub = frame[frame["_dataset"] == dataset]
        for model in dict.fromkeys(sub["model"].astype(str)):
            runs = sub[sub["model"].astype(str) == model]
            settings = list(dict.fromkeys(runs["_hp"]))
            for hp in settings:
                label = model if len(settings) == 1 or not hp else (
                    f"{model} ({', '.join(f'{k}={v}' for k, v in hp)})")
                group = runs[pd.Series([h == hp for h in runs["_hp"]], index=runs.index)]
                out.append((dataset, label, group))
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the one-sample t-interval (NaN bounds for n < 2)."""
    n = values.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, float | int) or isinstance(confidence, bool) or not (
            0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; received "
                         f"{confidence!r}")


def paper_table(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and Student-t interval over seeds per dataset, model and score.

    Args:
        results: the results table (``model`` and ``status`` columns; ``dataset``, ``seed``
            and ``hp.*`` where present; scores as ``score.<key>``).
        metrics: the scores (see :func:`paper_scores`; default the paper's InfoM, InfoE,
            InfoC, DCI and MIG scores present in the table).
        confidence: the interval's coverage.

    Returns:
        a long-form frame with :data:`PAPER_COLUMNS`, one row per (dataset, model,
        metric) in table order: ``metric`` is the score key (``infomec.infom``), ``n``
        the finished runs with a finite value, ``mean``, ``ci_low``/``ci_high`` (NaN for
        ``n < 2``; ``mean`` too for ``n = 0``), and ``best`` (bool). ``dataset`` is
        ``"—"`` when the table has no dataset column.

    Raises:
        ValueError: ``confidence`` outside (0, 1), or a named score is not in the table.
    """
    _check_confidence(confidence)
    cells = [(c, {"metric": _short(c)}) for c in paper_scores(results, metrics)]
    return _mean_table(results, cells, PAPER_COLUMNS, confidence)


def factor_table(
    results: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and Student-t interval over seeds per dataset, model, score and factor, of the
    scores that decompose over factors: which factors each model captures.

    The per-factor values are the results table's ``factor.<key>.<factor>`` columns
    (:mod:`disentkit.study.results`), e.g. InfoE per factor (how much of the factor a
    linear classifier reads out of the whole representation) or MIG per factor (the gap
    between the two latents most informative about it); the statistics are
    :func:`paper_table`'s, the best mean marked per dataset, score and factor.

    Args:
        results: the results table.
        metrics: the scores (see :func:`paper_scores`); those without per-factor columns
            are left out.
        confidence: the intervals' coverage.

    Returns:
        a long-form frame with :data:`FACTOR_COLUMNS`, one row per (dataset, model,
        score, factor) in table order (factors in the order of the results' columns: the
        dataset's).

    Raises:
        ValueError: ``confidence`` outside (0, 1), or a named score is not in the table.

    Example:
        >>> import pandas as pd
        >>> runs = pd.DataFrame({"model": ["qlae", "qlae"], "seed": [0, 1],
        ...     "status": ["done"] * 2, "score.mig": [0.3, 0.5],
        ...     "factor.mig.shape": [0.1, 0.3], "factor.mig.scale": [0.5, 0.7]})
        >>> table = factor_table(runs)
        >>> table[["metric", "factor", "n", "mean"]].round(3).to_dict("records")
        [{'metric': 'mig', 'factor': 'shape', 'n': 2, 'mean': 0.2}, {'metric': 'mig', 'factor': 'scale', 'n': 2, 'mean': 0.6}]
    """  # noqa: E501
    _check_confidence(confidence)
    cells = []
    for column in paper_scores(results, metrics):
        prefix = f"{FACTOR_PREFIX}{_short(column)}."
        cells += [(c, {"metric": _short(column), "factor": c[len(prefix):]})
                  for c in results.columns if isinstance(c, str) and c.startswith(prefix)]
    return _mean_table(results, cells, FACTOR_COLUMNS, confidence,
                       group=("dataset", "metric", "factor"))


def _mean_table(results: pd.DataFrame, cells: Sequence[tuple[str, dict[str, str]]],
                columns: Sequence[str], confidence: float, *,
                group: Sequence[str] = ("dataset", "metric")) -> pd.DataFrame:
    """One row per setting and cell ``(results column, its row's naming fields: metric,
    ...)``, with :data:`PAPER_COLUMNS`' statistics; ``best`` marks the best mean per
    ``group``."""
    import pandas as pd

    rows = []
    for dataset, label, runs in _settings(done_runs(results)):
        for column, names in cells:
            values = _values(runs, column)
            values = values[np.isfinite(values)]
            mean, low, high = _t_interval(values, confidence)
            rows.append({"dataset": dataset, "model": label, **names,
                         "n": int(values.size), "mean": mean, "ci_low": low,
                         "ci_high": high, "best": False})
    table = pd.DataFrame(rows, columns=list(columns))
    table["n"] = table["n"].astype(int)
    table["best"] = table["best"].astype(bool)
    for keys, sub in table.groupby(list(group), sort=False):
        means = sub["mean"].to_numpy(dtype=np.float64)
        if not np.isfinite(means).any():
            continue
        target = np.nanmax(means) if higher_is_better(keys[1]) else np.nanmin(means)
        table.loc[sub.index[means == target], "best"] = True
    return table


def _seeded(runs: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Finite values of ``column`` and their seeds (``None`` when seeds are missing or
    repeat, so that pairing by seed is not possible)."""
    values = _values(runs, column)
    keep = np.isfinite(values)
    if "seed" not in runs.columns:
        return values[keep], None
    seeds = runs["seed"].to_numpy()[keep]
    if any(_missing(s) for s in seeds) or len(set(seeds.tolist())) != seeds.size:
        return values[keep], None
    order = np.argsort(seeds, kind="stable")
    return values[keep][order], seeds[order]


def _difference(a: np.ndarray, seeds_a: np.ndarray | None, b: np.ndarray,
                seeds_b: np.ndarray | None,
                confidence: float) -> tuple[str, float, float, float]:
    """``(method, difference, low, high)`` of mean(a) − mean(b)."""
    if a.size == 0 or b.size == 0:
        return "", math.nan, math.nan, math.nan
    q = (1 + confidence) / 2
    if (seeds_a is not None and seeds_b is not None and seeds_a.size == seeds_b.size
            and np.array_equal(seeds_a, seeds_b)):
        mean, low, high = _t_interval(a - b, confidence)
        return "paired", mean, low, high
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return "welch", diff, math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return "welch", diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(q, df) * se)
    return "welch", diff, diff - half, diff + half


def paired_comparison(
    results: pd.DataFrame,
    reference: str = "qlae",
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each model's difference to a reference model per dataset and score, with its
    interval.

    Args:
        results: the results table.
        reference: the reference model's label in :func:`paper_table` (its name, when it
            has one setting per dataset).
        metrics: the scores (see :func:`paper_scores`).
        confidence: the interval's coverage.

    Returns:
        a long-form frame with :data:`PAIRED_COLUMNS`, one row per (dataset, model ≠
        reference, metric) on datasets where the reference has finished runs:
        ``difference`` is mean(model) − mean(reference); ``method`` is ``"paired"`` (same
        seeds: t-interval of the per-seed differences, ``n`` = ``n_reference`` = pairs),
        ``"welch"`` (otherwise; Welch's interval) or ``""`` (no values); ``ci_low`` /
        ``ci_high`` are NaN with fewer than two values (pairs) on a side. With
        ``confidence=0.95`` an interval that excludes 0 is a difference significant at
        the 5 % level (per comparison, not corrected for the number of comparisons).

    Raises:
        ValueError: ``reference`` is not a model of the finished runs (lists them), or
            ``confidence`` is outside (0, 1).
    """
    import pandas as pd

    _check_confidence(confidence)
    columns = paper_scores(results, metrics)
    settings = _settings(done_runs(results))
    labels = list(dict.fromkeys(label for _, label, _ in settings))
    if reference not in labels:
        raise ValueError(f"reference must be a model of the finished runs; received "
                         f"{reference!r}. Models: {labels}")
    refs = {dataset: runs for dataset, label, runs in settings if label == reference}
    rows = []
    for dataset, label, runs in settings:
        if label == reference or dataset not in refs:
            continue
        for column in columns:
            a, seeds_a = _seeded(runs, column)
            b, seeds_b = _seeded(refs[dataset], column)
            method, diff, low, high = _difference(a, seeds_a, b, seeds_b, confidence)
            rows.append({"dataset": dataset, "model": label, "reference": reference,
                         "metric": _short(column), "method": method, "n": int(a.size),
                         "n_reference": int(b.size), "difference": diff, "ci_low": low,
                         "ci_high": high})
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


# ----------------------------------------------------------------------- presentation


def format_cell(mean: float, low: float, high: float, n: int, *, digits: int = 3,
                signed: bool = False) -> str:
    """A cell of the displayed table: ``0.734 ± 0.021`` (or ``+0.05 [−0.01, 0.11]`` when
    ``signed``), ``0.734 (n=1)`` without an interval, ``—`` without a value."""
    if n == 0 or not math.isfinite(mean):
        return "—"
    sign = "+" if signed else ""
    text = f"{mean:{sign}.{digits}f}"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{text} (n={n})"
    if signed:
        return f"{text} [{low:+.{digits}f}, {high:+.{digits}f}]"
    return f"{text} ± {(high - low) / 2:.{digits}f}"


DisplayTable = tuple[str, list[str], list[list[Any]]]
"""``(dataset, header, rows)`` of a table to show."""


def wide_paper_table(table: pd.DataFrame) -> list[DisplayTable]:
    """The long :func:`paper_table` as one display table per dataset:
    ``(dataset, header, rows)`` with each cell ``(text, best)``; the first columns are
    ``model`` and ``n`` (the most seeds of any score; a cell with fewer says so)."""
    out = []
    metrics = list(dict.fromkeys(table["metric"]))
    for dataset, sub in table.groupby("dataset", sort=False):
        header = ["model", "n", *[score_label(m) for m in metrics]]
        out.append((str(dataset), header, _wide_rows(sub, "metric", metrics)))
    return out


def wide_factor_table(table: pd.DataFrame) -> list[tuple[str, str, list[str],
                                                         list[list[Any]]]]:
    """The long :func:`factor_table` as one display table per dataset and score:
    ``(dataset, score label, header, rows)``, a column per factor."""
    out = []
    for (dataset, metric), sub in table.groupby(["dataset", "metric"], sort=False):
        factors = list(dict.fromkeys(sub["factor"]))
        out.append((str(dataset), score_label(str(metric)), ["model", "n", *factors],
                    _wide_rows(sub, "factor", factors)))
    return out


def _wide_rows(sub: pd.DataFrame, key: str, keys: Sequence[str]) -> list[list[Any]]:
    """A display row per model: its name, its ``n`` (the most seeds of any cell) and a
    ``(text, best)`` cell per value of column ``key``; a cell with fewer seeds says so."""
    rows = []
    for model, cells in sub.groupby("model", sort=False):
        by_key = {getattr(r, key): r for r in cells.itertuples()}
        n = int(cells["n"].max())
        row = [(str(model), False), (str(n), False)]
        for k in keys:
            r = by_key.get(k)
            if r is None:
                row.append(("—", False))
                continue
            text = format_cell(r.mean, r.ci_low, r.ci_high, r.n)
            if 1 < r.n < n:  # fewer seeds than the row's n: say so
                text += f" (n={r.n})"
            row.append((text, bool(r.best)))
        rows.append(row)
    return rows


def wide_paired_table(paired: pd.DataFrame) -> list[DisplayTable]:
    """The long :func:`paired_comparison` as one display table per dataset:
    ``(dataset, header, rows)``; the last column names the interval's method (when a
    row mixes methods, its Welch cells end in ``(Welch)``)."""
    out = []
    metrics = list(dict.fromkeys(paired["metric"]))
    names = {"paired": "paired by seed", "welch": "Welch"}
    for dataset, sub in paired.groupby("dataset", sort=False):
        header = ["model", *[score_label(m) for m in metrics], "interval"]
        rows = []
        for model, cells in sub.groupby("model", sort=False):
            by_metric = {r.metric: r for r in cells.itertuples()}
            methods = [m for m in dict.fromkeys(cells["method"]) if m]
            row = [str(model)]
            for m in metrics:
                r = by_metric.get(m)
                text = "—" if r is None else format_cell(
                    r.difference, r.ci_low, r.ci_high, min(r.n, r.n_reference), signed=True)
                if r is not None and len(methods) > 1 and r.method == "welch":
                    text += " (Welch)"
                row.append(text)
            if len(methods) > 1:
                row.append("paired by seed, except (Welch)")
            else:
                row.append(names[methods[0]] if methods else "—")
            rows.append(row)
        out.append((str(dataset), header, rows))
    return out


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def paper_markdown(table: pd.DataFrame, paired: pd.DataFrame | None = None, *,
                   title: str | None = None, confidence: float = 0.95,
                   metric_ids: Sequence[str] = (),
                   factors: pd.DataFrame | None = None) -> str:
    """Markdown for a paper or the docs: the :func:`paper_table` per dataset (best mean
    in bold) and, when given, the :func:`paired_comparison` and the :func:`factor_table`
    per dataset.

    Args:
        table: a :func:`paper_table`.
        paired: a :func:`paired_comparison` (optional).
        factors: a :func:`factor_table` (optional).
        title: a first-level heading (optional).
        confidence: the coverage the tables were computed with (for the text).
        metric_ids: the versioned metric IDs behind the scores, named under the text
            (they say which estimator and protocol each number used).

    Example:
        >>> import pandas as pd
        >>> runs = pd.DataFrame({"model": ["qlae", "qlae", "ae"], "seed": [0, 1, 0],
        ...     "status": ["done"] * 3, "score.mig": [0.4, 0.6, 0.2]})
        >>> print(paper_markdown(paper_table(runs)).splitlines()[-2:])
        ['| qlae | 2 | **0.500 ± 1.271** |', '| ae | 1 | 0.200 (n=1) |']
    """
    pct = f"{confidence * 100:g} %"
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines += [f"Mean ± half-width of the {pct} Student-t interval over seeds "
              f"(t((1 + {confidence:g}) / 2, n − 1) · s / √n); n = number of seeds; "
              "`(n=1)`: one seed, no interval. The best mean per column is in bold "
              "(lower is better only for scores the metric registry marks so).", ""]
    if metric_ids:
        lines += ["Metric IDs: " + ", ".join(f"`{i}`" for i in metric_ids) + ".", ""]
    headed = bool(len(table)) and set(table["dataset"]) != {_NO_DATASET}
    for dataset, header, rows in wide_paper_table(table):
        if headed:
            lines += [f"## {dataset}", ""]
        lines.append(_md_row(header))
        lines.append(_md_row(["---", "---:", *["---:"] * (len(header) - 2)]))
        for row in rows:
            lines.append(_md_row([f"**{t}**" if best else t for t, best in row]))
        lines.append("")
    if paired is not None and len(paired):
        reference = str(paired["reference"].iloc[0])
        lines += [f"## Difference to {reference}", "",
                  f"Mean of the model − mean of {reference}, with its {pct} interval: "
                  "paired by seed (t-interval of the per-seed differences) where both "
                  "have the same seeds, else Welch's interval. An interval that excludes "
                  "0 is a difference at that level, per comparison.", ""]
        for dataset, header, rows in wide_paired_table(paired):
            if headed:
                lines += [f"### {dataset}", ""]
            lines.append(_md_row(header))
            lines.append(_md_row(["---", *["---:"] * (len(header) - 2), "---"]))
            lines += [_md_row(row) for row in rows]
            lines.append("")
    if factors is not None and len(factors):
        lines += ["## Per factor", "", FACTOR_TEXT.format(pct=pct), ""]
        for dataset, label, header, rows in wide_factor_table(factors):
            lines += [f"### {label} per factor" + (f", {dataset}" if headed else ""), ""]
            lines.append(_md_row(header))
            lines.append(_md_row(["---", "---:", *["---:"] * (len(header) - 2)]))
            lines += [_md_row([f"**{t}**" if best else t for t, best in row]) for row in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


FACTOR_TEXT = ("Which factors each model captures: the scores that decompose over factors, "
               "factor by factor (e.g. InfoE: how much of the factor a linear classifier "
               "reads out of the whole representation; InfoC: whether one active latent "
               "holds it rather than several; MIG: the gap between the two latents most "
               "informative about it), mean ± {pct} interval over seeds, the best mean per "
               "factor in bold.")
"""The text above the per-factor tables (``{pct}``: the coverage)."""

