"""Studies: many runs (datasets × models × hyper-parameters × seeds) from one spec.

- :func:`load_spec` / :func:`expand`: the YAML spec and its runs, each with a fixed number.
- :func:`run_study`: run what is not done yet on Ray Tune (local or a cluster) or in this
  process; retries, resumes from checkpoints, never redoes a finished run.
- :func:`collect` / :func:`write_results` / :func:`read_results`: one row per run,
  rebuilt from the run directories (``results.parquet`` and ``results.csv``).
- :func:`paper_table` / :func:`paired_comparison` / :func:`factor_table`: mean ± 95 %
  interval over seeds per dataset and model, each model's difference to a reference
  model, and the per-factor scores factor by factor (:mod:`disentkit.study.tables`);
  :func:`write_paper_tables` writes them as CSV and Markdown beside the results.
- :func:`write_study_report`: one HTML page about the whole study (the paper-style table
  first).
- ``run_study(..., overrides=["train.steps=20"])``: dotted overrides of every run
  (:mod:`disentkit.study.overrides`).

Importing this package imports neither torch nor Ray.
"""

from pathlib import Path
from typing import Any

from disentkit.study.results import collect, read_results, write_results
from disentkit.study.runner import StudyOutcome, init_study_dir, run_study, train_run
from disentkit.study.spec import RunSpec, StudySpec, expand, load_spec, parse_model_nums, run_name
from disentkit.study.tables import (
    factor_table,
    paired_comparison,
    paper_markdown,
    paper_table,
)


def write_study_report(study_dir: Any, **options: Any) -> Path:
    """Write ``STUDY_DIR/report.html``; see :func:`disentkit.study.report.write_study_report`
    (imported on first use: it needs matplotlib and pandas)."""
    from disentkit.study.report import write_study_report as _write

    return _write(study_dir, **options)


def write_paper_tables(study_dir: Any, **options: Any) -> dict[str, Path]:
    """Write ``paper_table.csv``, ``paired_vs_<reference>.csv``, ``factor_table.csv`` and
    ``paper_table.md`` in ``STUDY_DIR``; see
    :func:`disentkit.study.report.write_paper_tables` (imported on first use, like
    :func:`write_study_report`)."""
    from disentkit.study.report import write_paper_tables as _write

    return _write(study_dir, **options)


__all__ = [
    "RunSpec",
    "StudyOutcome",
    "StudySpec",
    "collect",
    "expand",
    "factor_table",
    "init_study_dir",
    "load_spec",
    "paired_comparison",
    "paper_markdown",
    "paper_table",
    "parse_model_nums",
    "read_results",
    "run_name",
    "run_study",
    "train_run",
    "write_paper_tables",
    "write_results",
    "write_study_report",
]
