"""One self-contained HTML page per study: :func:`write_study_report` writes
``STUDY_DIR/report.html``.

The page looks like a run's report (:mod:`disentkit.viz.report`, whose stylesheet and
helpers it shares) and, like it, needs nothing but the file: CSS inline, every image a
base64 ``data:`` URI, no script, no URL. Like it, it opens with its summary and folds the
long table: it shows, from the top,

- the study's name (``study.yaml``'s ``name``, else the directory's name);
- the paper-style table (:mod:`disentkit.study.tables`): per dataset and model, mean ±
  95 % Student-t interval over seeds of InfoM, InfoE, InfoC, DCI and MIG with the best
  per column marked, each model's difference to a reference model (default ``qlae``),
  and, folded, the scores that decompose over factors factor by factor (which factors
  each model captures); also written beside the results as ``paper_table.csv``,
  ``paired_vs_<reference>.csv``, ``factor_table.csv`` and ``paper_table.md``
  (:func:`write_paper_tables`);
- how many runs are done, failed and pending, per model;
- the study figures of :mod:`disentkit.viz.study_figures` (also written as PNGs to
  ``STUDY_DIR/figures/``): scores per model, scores per hyper-parameter value, rank
  correlation between metrics, variation across seeds, reconstruction vs disentanglement;
- the latent traversals of the best and the worst finished run of each model by one
  primary score, read from each run's ``figures/traversals.png`` (drawn first when missing
  and the run has a saved model);
- folded below (``<details>``, no script): the table of every run: number, model, dataset,
  seed, hyper-parameters, status and main scores; a failed run shows its error instead of
  scores.

A run whose traversals cannot be shown, or a figure that cannot be drawn, leaves a note on
the page; it never costs the rest of the report. Every string from the table is
HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disentkit._atomic import atomic_write
from disentkit._validation import DisentkitWarning
from disentkit._version import __version__
from disentkit.rundir import (
    FACTOR_CSV,
    FIGURES_DIR,
    PAPER_CSV,
    PAPER_MD,
    REPORT_NAME,
    SPEC_NAME,
    RunDir,
    paired_csv_name,
)
from disentkit.study.results import read_results
from disentkit.study.tables import (
    FACTOR_TEXT,
    factor_table,
    higher_is_better,
    paired_comparison,
    paper_markdown,
    paper_table,
    score_label,
    wide_factor_table,
    wide_paired_table,
    wide_paper_table,
)
from disentkit.viz.report import (
    _CSS,
    _SMALL_WIDTH,
    _e,
    _image_mime,
    _image_size,
    _num,
    _page,
)
from disentkit.viz.study_figures import (
    PREFERRED_SCORES,
    SCORE_PREFIX,
    _plan,
    _short,
    done_runs,
    format_value,
    hp_columns,
    main_scores,
    model_groups,
    paired_differences,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PAPER_CSV", "PAPER_MD", "REPORT_NAME", "paired_csv_name", "write_paper_tables",
           "write_study_report"]

DEFAULT_REFERENCE = "qlae"
_STATUSES = ("done", "failed", "pending")
_REQUIRED = ("model", "status")
_EXTRA_CSS = """
.scroll { overflow-x: auto; }
tr.failed td { background: #fdf0f0; }
tr.pending td { color: #777; }
table.paper td.best { font-weight: bold; }
td.error { color: #a61b1b; white-space: pre-wrap; font-family: ui-monospace, monospace;
           font-size: 0.88em; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.pair figure { margin: 0.4em 0; }
"""
_CAPTIONS = {
    "score_distributions": "Distribution of each score over the finished runs of each "
                           "model: box (or violin) with every run as a point; dashed and "
                           "dotted lines are the median random and ground-truth baselines.",
    "rank_correlation": "Spearman rank correlation between scores over the finished runs: "
                        "red where two metrics order the runs alike, blue where they "
                        "disagree; blank where a score is constant.",
    "seed_variance": "Each setting (model and hyper-parameters) with each seed as a point, "
                     "the range across seeds as a line and the mean as a tick: differences "
                     "smaller than the spread across seeds are noise.",
    "reconstruction_tradeoff": "Reconstruction error (per pixel) against disentanglement "
                               "scores, one point per finished run, coloured by model.",
}


# --------------------------------------------------------------------------- reading


def _load(study: Path, results: Any) -> pd.DataFrame:
    import pandas as pd

    if results is None:
        table = read_results(study)
    elif isinstance(results, pd.DataFrame):
        table = results
    elif isinstance(results, str | os.PathLike):
        path = Path(results).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no results table at {str(path)!r}")
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    else:
        raise TypeError("results must be a pandas DataFrame, a path to a .parquet or .csv "
                        f"file, or None; received {type(results).__name__}")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing}; it has "
                         f"{list(table.columns)[:12]}")
    table = table.copy()
    if "model_num" not in table.columns:
        table["model_num"] = range(len(table))
    if "run_name" not in table.columns:
        table["run_name"] = [f"run-{int(n):05d}" for n in table["model_num"]]
    errors = table["error"] if "error" in table.columns else [None] * len(table)
    table["error"] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                      for v in errors]
    table["status"] = table["status"].astype(str)
    return table.sort_values("model_num", kind="stable").reset_index(drop=True)


def _study_name(study: Path) -> str:
    spec = study / SPEC_NAME
    if spec.is_file():
        import yaml

        try:
            data = yaml.safe_load(spec.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):  # the name is not worth a crash
            data = None
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"])
    return study.resolve().name


# --------------------------------------------------------------------------- ranking


def _primary(table: pd.DataFrame, primary: str | None, scores: Sequence[str]) -> str | None:
    done = done_runs(table)
    if primary is not None:
        column = primary if primary.startswith(SCORE_PREFIX) else f"{SCORE_PREFIX}{primary}"
        if column not in table.columns:
            known = [_short(c) for c in table.columns
                     if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
            raise ValueError(f"primary score {primary!r} is not in the results table; its "
                             f"scores are {known}")
        return column

    def present(c: str) -> bool:
        if c not in done.columns:
            return False
        import pandas as pd

        return bool(pd.to_numeric(done[c], errors="coerce").notna().any())

    return next((c for c in (*PREFERRED_SCORES, *scores) if present(c)), None)


def _extremes(table: pd.DataFrame, primary: str) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Per model group: ``[("best", row), ("worst", row)]`` by ``primary`` among finished
    runs (one entry when the group has one scored run; ties go to the lower run number)."""
    import pandas as pd

    done = done_runs(table)
    labels = model_groups(done)
    values = pd.to_numeric(done[primary], errors="coerce")
    sign = 1.0 if higher_is_better(primary) else -1.0
    out = []
    for group in sorted(model_groups(table).unique()):
        ok = (labels == group) & values.notna()
        if not ok.any():
            out.append((group, []))
            continue
        runs = done[ok].assign(_key=sign * values[ok])
        best = runs.sort_values(["_key", "model_num"], ascending=[False, True],
                                kind="stable").iloc[0]
        worst = runs.sort_values(["_key", "model_num"], ascending=[True, True],
                                 kind="stable").iloc[0]
        pair = [("best", best)]
        if worst["model_num"] != best["model_num"]:
            pair.append(("worst", worst))
        out.append((group, pair))
    return out


# --------------------------------------------------------------------------- images


def _img(data: bytes, alt: str, *, enlarge: bool) -> str:
    mime = _image_mime(data) or "image/png"
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    width, height = _image_size(data, mime)
    scale = min(4, max(1, _SMALL_WIDTH // width)) if enlarge and width else 1
    size = f" width=\"{width * scale}\" height=\"{height * scale}\"" if width else ""
    pixels = " class=\"pixels\"" if scale > 1 else ""
    return f"<img src=\"{uri}\"{size}{pixels} alt=\"{_e(alt)}\">"


def _warn(message: str) -> str:
    warnings.warn(message, DisentkitWarning, stacklevel=4)
    return message


def _traversal(study: Path, row: Any,
               progress: Callable[[str], None] | None) -> tuple[bytes | None, str | None]:
    """The PNG bytes of a run's traversals, or a note saying why there are none."""
    rel = row.get("run_dir")
    if not isinstance(rel, str) or not rel:
        return None, "no run directory recorded for this run"
    run = study / rel
    png = run / FIGURES_DIR / "traversals.png"
    if not png.is_file():
        if not RunDir(run).weights.is_file():
            return None, (f"no traversals: the run has no {FIGURES_DIR}/traversals.png and no "
                          "saved model")
        if progress is not None:
            progress(f"traversals {row['run_name']}")
        try:
            from disentkit.viz.figures import render_run_figures

            render_run_figures(run)
        except Exception as exc:  # one run's figures must not cost the study its page
            return None, _warn(f"traversals of {row['run_name']} could not be drawn: "
                               f"{type(exc).__name__}: {exc}")
        if not png.is_file():
            return None, "drawing the run's figures gave no traversals.png"
    try:
        data = png.read_bytes()
    except OSError as exc:
        return None, _warn(f"could not read {str(png)!r}: {exc}")
    if _image_mime(data) != "image/png":
        return None, f"{rel}/{FIGURES_DIR}/traversals.png is not a PNG image"
    return data, None


# --------------------------------------------------------------------------- sections


def _value(value: Any) -> str:
    """A table cell: numbers rounded, missing values as a dash."""
    if value is None:
        return "—"
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return _num(value)


def _counts_section(table: pd.DataFrame) -> str:
    statuses = [*_STATUSES, *sorted(set(table["status"]) - set(_STATUSES))]
    total = {s: int((table["status"] == s).sum()) for s in statuses}
    summary = ", ".join(f"{total[s]} {s}" for s in statuses if total[s] or s in _STATUSES)
    labels = model_groups(table)
    head = "".join(f"<th>{_e(s)}</th>" for s in statuses)
    rows = []
    for group in sorted(labels.unique()):
        sub = table[labels == group]
        cells = "".join(f"<td class=\"num\">{int((sub['status'] == s).sum())}</td>"
                        for s in statuses)
        rows.append(f"<tr><td>{_e(group)}</td>{cells}</tr>")
    return (f"<p><b>{len(table)} runs</b>: {_e(summary)}.</p>\n"
            f"<table>\n<tr><th>model</th>{head}</tr>\n" + "\n".join(rows) + "\n</table>")


def _about_scores(table: pd.DataFrame, scores: Sequence[str]) -> str:
    parts = []
    if "representation" in table.columns:
        kinds = sorted({str(k) for k in done_runs(table)["representation"].dropna() if k})
        if kinds:
            parts.append(f"Scores of the {', '.join(f'<code>{_e(k)}</code>' for k in kinds)} "
                         "representation.")
    ids = []
    for column in scores:
        metric = _short(column).split(".")[0]
        id_column = f"metric_id.{metric}"
        if id_column in table.columns:
            found = sorted({str(v) for v in table[id_column].dropna() if str(v)})
            entry = f"<code>{_e(', '.join(found))}</code>" if found else ""
            if found and entry not in ids:
                ids.append(entry)
    if ids:
        parts.append(f"Metric IDs: {', '.join(ids)}.")
    return f"<p class=\"meta\">{' '.join(parts)}</p>" if parts else ""


def _runs_section(table: pd.DataFrame, scores: Sequence[str]) -> str:
    hps = hp_columns(table)
    several = "dataset" in table.columns and table["dataset"].nunique(dropna=True) > 1
    fixed = [("#", "model_num"), ("run", "run_name"), ("model", "model")]
    if "dataset" in table.columns:
        fixed.append(("dataset", "dataset"))
    if "seed" in table.columns:
        fixed.append(("seed", "seed"))
    head = [name for name, _ in fixed] + [_short(c) for c in hps] + ["status"]
    head += [_short(c) for c in scores]
    lines = ["<div class=\"scroll\"><table class=\"runs\">",
             "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for _, row in table.iterrows():
        status = str(row["status"])
        cells = []
        for _, column in fixed:
            value = row[column]
            text = _value(value) if column not in ("model_num", "seed") else (
                str(int(value)) if _value(value) != "—" else "—")
            cls = " class=\"num\"" if column in ("model_num", "seed") else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        cells += [f"<td>{_e(format_value(_plain(row[c])))}</td>" for c in hps]
        cells.append(f"<td>{_e(status)}</td>")
        if status == "failed" and scores:
            cells.append(f"<td class=\"error\" colspan=\"{len(scores)}\">"
                         f"{_e(row['error'] or 'failed (no error recorded)')}</td>")
        else:
            cells += [f"<td class=\"num\">{_e(_value(row[c]))}</td>" for c in scores]
        cls = f" class=\"{_e(status)}\"" if status in ("failed", "pending") else ""
        lines.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    note = ("<p class=\"meta\">Runs of different datasets are grouped separately in the "
            "figures.</p>" if several else "")
    label = (f"Every run ({len(table)}): its hyper-parameters, status and "
             f"{len(scores)} score{'s' if len(scores) != 1 else ''}, or its error")
    return "\n".join(["<h2 id=\"every-run\">Every run</h2>", "<details>",
                      f"<summary>{_e(label)}</summary>", _about_scores(table, scores), *lines,
                      "</details>", note])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _figure_html(name: str, data: bytes, caption: str) -> str:
    return (f"<figure id=\"fig-{_e(name)}\">\n{_img(data, caption, enlarge=False)}\n"
            f"<figcaption>{_e(caption)} <span class=\"dim\">(<code>{FIGURES_DIR}/"
            f"{_e(name)}.png</code>)</span></figcaption>\n</figure>")


def _figures_section(
    study: Path, table: pd.DataFrame, scores: Sequence[str],
    progress: Callable[[str], None] | None,
) -> str:
    from disentkit.viz.figures import save_figure

    parts = ["<h2>Figures</h2>"]
    done = done_runs(table)
    if done.empty:
        parts.append("<p class=\"note\">No finished runs yet: nothing to plot.</p>")
        return "\n".join(parts)
    if not scores:
        parts.append("<p class=\"note\">The results table holds no scores: nothing to "
                     "plot.</p>")
        return "\n".join(parts)
    plan = _plan(table, scores)
    names = {name for name, _, _ in plan}
    for name, label, draw in plan:
        if progress is not None:
            progress(label)
        try:
            fig = draw()
            if fig is None:
                continue
            path = save_figure(fig, study / FIGURES_DIR / f"{name}.png")
            data = path.read_bytes()
        except Exception as exc:  # one figure must not cost the study its page
            message = _warn(f"figure '{label}' could not be drawn: {type(exc).__name__}: {exc}")
            parts.append(f"<p class=\"note\">{_e(message)}</p>")
            continue
        caption = _CAPTIONS.get(name) or (
            f"Scores against {label.removeprefix('hyper-parameter ')}, per model that sets "
            "it: a box per value, each run as a point.")
        parts.append(_figure_html(name, data, caption))
    missing = []
    if not hp_columns(done):
        missing.append("the table has no <code>hp.*</code> columns (no hyper-parameter "
                       "swept), so there are no per-hyper-parameter figures")
    if "rank_correlation" not in names:
        missing.append("rank correlations need two scores and three finished runs")
    if "seed_variance" not in names:
        missing.append("no setting was run with more than one seed, so there is no seed "
                       "variance to show")
    if "reconstruction_tradeoff" not in names:
        missing.append("no finished run has a reconstruction error "
                       "(<code>recon.*</code>)")
    if missing:
        parts.append("<p class=\"meta\">Not shown: " + "; ".join(missing) + ".</p>")
    return "\n".join(parts)


def _traversals_section(
    study: Path, table: pd.DataFrame, primary: str | None,
    progress: Callable[[str], None] | None,
) -> str:
    parts = ["<h2>Traversals of the best and worst runs</h2>"]
    if primary is None:
        parts.append("<p class=\"note\">No score to rank the runs by: no traversals "
                     "shown.</p>")
        return "\n".join(parts)
    direction = "higher" if higher_is_better(primary) else "lower"
    parts.append(f"<p>Finished runs of each model ranked by <code>{_e(primary)}</code> "
                 f"({direction} is better): the best and the worst run's latent traversals "
                 "(each row sweeps one latent from a seed image).</p>")
    for group, pair in _extremes(table, primary):
        parts.append(f"<h3>{_e(group)}</h3>")
        if not pair:
            parts.append(f"<p class=\"note\">No finished run of {_e(group)} has a "
                         f"<code>{_e(primary)}</code> score.</p>")
            continue
        if len(pair) == 1:
            parts.append("<p class=\"meta\">One scored run: it is both the best and the "
                         "worst.</p>")
        parts.append("<div class=\"pair\">")
        for rank, row in pair:
            name = str(row["run_name"])
            score = _value(row[primary])
            head = f"{rank}: {name}, {_short(primary)} = {score}"
            data, note = _traversal(study, row, progress)
            body = (_img(data, f"latent traversals of {name}", enlarge=True) if data
                    else f"<p class=\"note\">{_e(note)}</p>")
            parts.append(
                f"<figure class=\"traversal\" data-group=\"{_e(group)}\" "
                f"data-rank=\"{rank}\" data-run=\"{_e(name)}\">\n{body}\n"
                f"<figcaption>{_e(head)} <span class=\"dim\">(<code>"
                f"{_e(row.get('run_dir', ''))}/{FIGURES_DIR}/traversals.png</code>)</span>"
                "</figcaption>\n</figure>")
        parts.append("</div>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- paper table


def _paper_frames(
    table: pd.DataFrame, metrics: Sequence[str] | None, reference: str | None,
    confidence: float,
) -> tuple[pd.DataFrame, pd.DataFrame | None, str | None, pd.DataFrame]:
    """The paper table, the paired comparison (``None`` without a reference), the
    reference (``reference``, else ``qlae`` when it has finished runs (its first setting
    when it has several), else the first model of the table) and the per-factor table."""
    paper = paper_table(table, metrics, confidence=confidence)
    factors = factor_table(table, metrics, confidence=confidence)
    labels = list(dict.fromkeys(paper["model"]))
    if reference is None:
        if not labels:
            return paper, None, None, factors
        default = [label for label in labels if label == DEFAULT_REFERENCE
                   or label.startswith(f"{DEFAULT_REFERENCE} (")]
        reference = (default or labels)[0]
    paired = paired_comparison(table, reference, metrics, confidence=confidence)
    return paper, paired, reference, factors


def _metric_ids(table: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The distinct metric IDs (``metric_id.<metric>`` columns) of the given score keys."""
    ids: list[str] = []
    for metric in dict.fromkeys(m.split(".")[0] for m in metrics):
        column = f"metric_id.{metric}"
        if column in table.columns:
            ids += [i for i in dict.fromkeys(str(v) for v in done_runs(table)[column].dropna())
                    if i and i not in ids]
    return ids


def _write_paper_files(study: Path, table: pd.DataFrame, name: str, paper: pd.DataFrame,
                       paired: pd.DataFrame | None, reference: str | None,
                       factors: pd.DataFrame, confidence: float) -> dict[str, Path]:
    study.mkdir(parents=True, exist_ok=True)
    paths = {"csv": atomic_write(study / PAPER_CSV,
                                 lambda tmp: paper.to_csv(tmp, index=False))}
    if paired is not None and reference is not None:
        paths["paired_csv"] = atomic_write(study / paired_csv_name(reference),
                                           lambda tmp: paired.to_csv(tmp, index=False))
    if len(factors):
        paths["factor_csv"] = atomic_write(study / FACTOR_CSV,
                                           lambda tmp: factors.to_csv(tmp, index=False))
    text = paper_markdown(paper, paired, title=f"Study {name}", confidence=confidence,
                          metric_ids=_metric_ids(table, list(paper["metric"])),
                          factors=factors)
    paths["markdown"] = atomic_write(study / PAPER_MD,
                                     lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return paths


def write_paper_tables(
    study_dir: str | os.PathLike[str],
    *,
    results: pd.DataFrame | str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    confidence: float = 0.95,
) -> dict[str, Path]:
    """Write the paper-style tables of a study beside its results table.

    Files (see :mod:`disentkit.study.tables` for the statistics):

    - ``paper_table.csv``: long form, one row per dataset, model and score: ``dataset,
      model, metric, n, mean, ci_low, ci_high, best``;
    - ``paired_vs_<reference>.csv``: ``dataset, model, reference, metric, method, n,
      n_reference, difference, ci_low, ci_high`` (not written without finished runs);
    - ``factor_table.csv``: the scores that decompose over factors, factor by factor
      (:func:`disentkit.study.tables.factor_table`): ``dataset, model, metric, factor, n,
      mean, ci_low, ci_high, best`` (not written when the results have no per-factor
      columns);
    - ``paper_table.md``: all three as Markdown tables.

    Args:
        study_dir: the study directory.
        results: the results table (as for :func:`write_study_report`); default the
            study's ``results.parquet`` (else ``results.csv``).
        metrics: the scores (default: InfoM, InfoE, InfoC, DCI and MIG where present).
        reference: the model the others are compared with (its label in the table, e.g.
            ``beta_vae (beta=4)`` for one of several settings); default ``qlae`` when it
            has finished runs (its first setting when it has several), else the table's
            first model.
        confidence: the intervals' coverage.

    Returns:
        the written paths under the keys ``csv``, ``paired_csv`` and ``factor_csv``
        (when written) and ``markdown``.

    Raises:
        FileNotFoundError: no results table.
        ValueError: ``reference`` or a score in ``metrics`` is not in the table.

    Example:
        >>> import tempfile
        >>> import pandas as pd
        >>> study = Path(tempfile.mkdtemp())
        >>> runs = pd.DataFrame({"model": ["qlae", "qlae", "ae", "ae"], "seed": [0, 1, 0, 1],
        ...     "status": ["done"] * 4, "score.mig": [0.4, 0.6, 0.2, 0.3]})
        >>> sorted(p.name for p in write_paper_tables(study, results=runs).values())
        ['paired_vs_qlae.csv', 'paper_table.csv', 'paper_table.md']
    """
    study = Path(study_dir).expanduser()
    table = _load(study, results)
    paper, paired, ref, factors = _paper_frames(table, metrics, reference, confidence)
    name = _study_name(study) if study.is_dir() else study.name
    return _write_paper_files(study, table, name, paper, paired, ref, factors, confidence)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *,
                text_columns: Sequence[int] = (0,)) -> str:
    """A table of display cells; a cell is text or ``(text, best)`` (best in bold)."""
    lines = ["<div class=\"scroll\"><table class=\"paper\">",
             "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    texts = {i % len(header) for i in text_columns}
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text, best = cell if isinstance(cell, tuple) else (cell, False)
            classes = " ".join(c for c, on in (("num", i not in texts), ("best", best)) if on)
            attr = f" class=\"{classes}\"" if classes else ""
            cells.append(f"<td{attr}>{f'<b>{_e(text)}</b>' if best else _e(text)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def _paired_figure(study: Path, paired: pd.DataFrame, reference: str) -> str:
    """The paired comparison as a figure (``figures/paired_vs_<reference>.png``), or a
    note when it cannot be drawn."""
    from disentkit.viz.figures import save_figure

    name = paired_csv_name(reference).removesuffix(".csv")
    labels = {m: score_label(m) for m in paired["metric"]}
    try:
        fig = paired_differences(paired, labels=labels)
        data = save_figure(fig, study / FIGURES_DIR / f"{name}.png").read_bytes()
    except Exception as exc:  # one figure must not cost the study its page
        message = _warn(f"figure 'difference to {reference}' could not be drawn: "
                        f"{type(exc).__name__}: {exc}")
        return f"<p class=\"note\">{_e(message)}</p>"
    return _figure_html(name, data, f"Difference of each model to {reference} with its "
                        "95 % interval (solid: paired by seed, dashed: Welch, hollow point: "
                        "no interval); the dashed vertical line is no difference.")


def _paper_section(study: Path, table: pd.DataFrame, paper: pd.DataFrame,
                   paired: pd.DataFrame | None, reference: str | None,
                   factors: pd.DataFrame, files: Sequence[str], confidence: float) -> str:
    pct = f"{confidence * 100:g} %"
    parts = [f"<h2 id=\"paper-table\">Mean ± {pct} interval over seeds</h2>"]
    if paper.empty:
        parts.append("<p class=\"note\">No finished run has a score yet: no table.</p>")
        return "\n".join(parts)
    parts.append(
        f"<p>Per dataset and model, over finished runs: the mean over seeds ± the "
        f"half-width of the {pct} Student-t interval (t · s / √n, n − 1 degrees of "
        "freedom); <i>(n=1)</i>: one seed, no interval. The best mean of each column is in "
        "bold (higher is better, except for scores the metric registry marks lower is "
        "better).</p>")
    parts.append(_about_scores(table, [f"score.{m}" for m in dict.fromkeys(paper["metric"])]))
    displays = wide_paper_table(paper)
    headed = len(displays) > 1 or displays[0][0] != "—"
    for dataset, header, rows in displays:
        if headed:
            parts.append(f"<h3>{_e(dataset)}</h3>")
        parts.append(_html_table(header, rows))
    if paired is not None and reference is not None:
        parts.append(f"<h3>Difference to {_e(reference)}</h3>")
        if paired.empty:
            parts.append(f"<p class=\"note\">No other model shares a dataset with "
                         f"{_e(reference)}: nothing to compare.</p>")
        else:
            parts.append(
                f"<p>Mean of each model − mean of <b>{_e(reference)}</b>, with its {pct} "
                "interval: paired by seed (t-interval of the per-seed differences) where "
                "both have the same seeds, else Welch's interval; the last column says "
                "which. An interval that excludes 0 is a difference at that level, per "
                "comparison (not corrected for the number of comparisons).</p>")
            for dataset, header, rows in wide_paired_table(paired):
                if headed:
                    parts.append(f"<h4>{_e(dataset)}</h4>")
                parts.append(_html_table(header, rows, text_columns=(0, -1)))
            parts.append(_paired_figure(study, paired, reference))
    if len(factors):
        parts.append(f"<details><summary>Per factor</summary>\n"
                     f"<p>{_e(FACTOR_TEXT.format(pct=pct))}</p>")
        for dataset, label, header, rows in wide_factor_table(factors):
            parts.append(f"<h4>{_e(label)} per factor"
                         + (f", {_e(dataset)}" if headed else "") + "</h4>")
            parts.append(_html_table(header, rows))
        parts.append("</details>")
    if files:
        listed = ", ".join(f"<code>{_e(f)}</code>" for f in files)
        parts.append(f"<p class=\"meta\">Also written to the study directory: {listed}.</p>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- the page


def write_study_report(
    study_dir: str | os.PathLike[str],
    *,
    results: pd.DataFrame | str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    primary: str | None = None,
    reference: str | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``study_dir/report.html``: one self-contained page about a whole study.

    Args:
        study_dir: the study directory (``study.yaml``, ``runs/``, ``results.parquet``).
        results: the results table (a DataFrame, or the path of a ``.parquet`` / ``.csv``
            file); default: ``results.parquet`` in ``study_dir``, else ``results.csv``.
        metrics: scores to show in the tables and figures, with or without the ``score.``
            prefix; default :func:`disentkit.viz.study_figures.main_scores` (every score
            but interval bounds and diagnostics), and for the paper-style table InfoM,
            InfoE, InfoC, DCI and MIG (:func:`disentkit.study.tables.paper_scores`).
        primary: the score that picks each model's best and worst run for the
            traversals; default: the first present of ``infomec.infom``,
            ``dci.disentanglement`` and ``mig`` (then the first main score). The page
            names it. Ranked by the metric's direction (higher is better for all but the
            unsupervised scores).
        reference: the model every other model is compared with in the paper-style
            table (:func:`write_paper_tables`; also drawn as
            ``figures/paired_vs_<reference>.png``); default ``qlae`` when it has finished
            runs (its first setting when it has several), else the table's first model.
        out: path of the page (default ``study_dir/report.html``). Study figures are
            written to ``study_dir/figures/`` either way, and the paper-style tables
            to ``study_dir`` (``paper_table.csv``, ``paired_vs_<reference>.csv``,
            ``factor_table.csv``, ``paper_table.md``).
        progress: called with a short label before each figure (and before drawing a
            run's missing traversals).

    Returns:
        the path of the report, written atomically.

    Raises:
        FileNotFoundError: ``study_dir`` is missing, or it holds no results table (run
            ``disentkit study run`` or ``disentkit study collect`` first).
        ValueError: the table lacks ``model`` or ``status``, ``metrics`` / ``primary``
            names a score the table does not have, or ``reference`` is not a model with
            finished runs.

    Example:
        >>> import tempfile
        >>> import pandas as pd
        >>> study = Path(tempfile.mkdtemp()) / "demo"
        >>> table = pd.DataFrame({"model_num": [0, 1], "run_name": ["run-00000", "run-00001"],
        ...     "run_dir": ["runs/run-00000", "runs/run-00001"], "status": ["done", "failed"],
        ...     "error": ["", "out of memory"], "model": ["vae", "vae"], "seed": [0, 1],
        ...     "score.mig": [0.25, float("nan")]})
        >>> page = write_study_report(study, results=table).read_text()
        >>> "1 done, 1 failed, 0 pending" in page and "out of memory" in page
        True
    """
    study = Path(study_dir).expanduser()
    table = _load(study, results)
    scores = main_scores(table, metrics)
    rank_by = _primary(table, primary, scores)
    name = _study_name(study) if study.is_dir() else study.name

    paper, paired, ref, factors = _paper_frames(table, metrics, reference, 0.95)
    written = _write_paper_files(study, table, name, paper, paired, ref, factors, 0.95)
    paper_html = _paper_section(study, table, paper, paired, ref, factors,
                                [path.name for path in written.values()], 0.95)
    figures = _figures_section(study, table, scores, progress)
    traversals = _traversals_section(study, table, rank_by, progress)
    if progress is not None:
        progress("report")
    about = [f"study directory <code>{_e(study.resolve().name)}</code>",
             f"disentkit {_e(__version__)}"]
    runs = f"<h2>Runs</h2>\n{_counts_section(table)}"
    page = _page(f"Study {name}", f"Study {name}", about,
                 [paper_html, runs, figures, traversals, _runs_section(table, scores)],
                 css=_CSS + _EXTRA_CSS)
    target = Path(out).expanduser() if out is not None else study / REPORT_NAME
    return atomic_write(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))
