"""The study's results table, rebuilt from its run directories.

Nothing here depends on the process that ran the study: :func:`collect` reads each run
directory (``runs/run-NNNNN/``: the trainer's files, ``metrics.json`` from the
evaluation, and the study's own records ``study_run.json`` (written when the run
finished), ``failed.json`` (its last error) and ``attempts.jsonl`` (one line per start))
and :func:`write_results` writes ``results.parquet`` and ``results.csv`` atomically.

Columns (one row per run of the spec, in model-number order):

- ``model_num``, ``run_name``, ``run_dir`` (relative to the study directory), ``status``
  (``"done"``, ``"failed"`` or ``"pending"``: not started, running, or killed and not yet
  retried), ``error`` (the last error of a failed run), ``attempts``, ``dataset``,
  ``model``, ``seed``, ``steps``, ``train_seconds`` (summed over attempts),
  ``eval_seconds``, ``representation`` (the representation kind scored: the model's
  default), ``config`` (the run's full config as JSON);
- ``hp.<dotted key>``: each swept hyper-parameter (missing where a run does not set it);
- ``score.<key>``: every numeric score of ``metrics.json`` for that representation, with
  :func:`disentkit.metrics.evaluate`'s flat keys (``score.mig``, ``score.mig.ci_low``,
  ``score.dci.disentanglement``, ...); ``baseline.<kind>.<key>`` for baselines;
  ``metric_id.<metric>`` for the metric IDs;
- ``factor.<key>.<factor>`` (last; factors in the dataset's order): the per-factor
  values of every score that decomposes over factors (``metrics.json``'s ``per_factor``
  records: ``factor.infomec.infoe.scale``, ``factor.mig.shape``,
  ``factor.dci.completeness.floor_hue``, ...), named by the dataset's factor names
  (``f<k>`` when ``metrics.json`` has none); a factor a metric skipped (one value) has
  no value;
- ``recon.bce_per_pixel``, ``recon.mse_per_pixel``: reconstruction error on the
  evaluation images.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from disentkit._atomic import atomic_write
from disentkit.rundir import (
    ATTEMPTS_NAME,
    DONE_NAME,
    FAILED_NAME,
    RESULTS_CSV,
    RESULTS_PARQUET,
    RUNS_DIR,
    SPEC_NAME,
    RunDir,
    StudyDir,
    read_json_or_none,
)
from disentkit.study.overrides import override_runs, read_overrides
from disentkit.study.spec import RunSpec, StudySpec, expand, run_name

STATUSES = ("done", "failed", "pending")
#: the prefix of the per-factor columns (``factor.<score key>.<factor name>``)
FACTOR_PREFIX = "factor."

#: the columns every row has, first, in this order
IDENTITY_COLUMNS = ("model_num", "run_name", "run_dir", "status", "error", "attempts",
                    "dataset", "model", "seed", "steps", "train_seconds", "eval_seconds",
                    "representation", "config")


def run_dir(study_dir: str | os.PathLike[str], model_num: int) -> Path:
    """The run directory of run ``model_num`` in a study directory."""
    return StudyDir(study_dir).runs / run_name(model_num)


def is_done(path: Path) -> bool:
    """Whether the run in ``path`` finished: trained, evaluated and recorded."""
    run = RunDir(path)
    return run.done.is_file() and run.metrics.is_file()


def read_attempts(path: Path) -> list[dict[str, Any]]:
    """The attempts recorded in ``path/attempts.jsonl`` (a torn last line is skipped)."""
    file = path / ATTEMPTS_NAME
    if not file.is_file():
        return []
    out = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _flatten_scores(scores: dict[str, Any], row: dict[str, Any]) -> None:
    for key, value in scores.items():
        if key.endswith(".metric_id"):
            row[f"metric_id.{key[: -len('.metric_id')]}"] = str(value)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, (int, float)):
            column = key if key.startswith("baseline.") else f"score.{key}"
            row[column] = float(value)


def _flatten_factor_scores(records: dict[str, Any], names: Any,
                           row: dict[str, Any]) -> None:
    """``factor.<key>.<factor>`` columns from each metric record's ``per_factor`` entry
    (``{score: {"factors": [k, ...], "values": [v, ...]}}``; ``"score"`` is the metric's
    only score, keyed by the metric's name as in :func:`disentkit.metrics.evaluate`)."""
    for metric, record in records.items():
        if not isinstance(record, dict):
            continue
        for score, entry in (record.get("per_factor") or {}).items():
            if not isinstance(entry, dict):
                continue
            key = metric if score == "score" else f"{metric}.{score}"
            for k, value in zip(entry.get("factors") or (), entry.get("values") or (),
                                strict=False):
                if not isinstance(k, int) or not isinstance(value, (int, float)):
                    continue
                name = (str(names[k]) if isinstance(names, list) and 0 <= k < len(names)
                        else f"f{k}")
                row[f"{FACTOR_PREFIX}{key}.{name}"] = float(value)


def run_row(study_dir: Path, run: RunSpec) -> dict[str, Any]:
    """One results row for ``run`` (see the module docstring for the columns)."""
    path = run_dir(study_dir, run.model_num)
    attempts = read_attempts(path)
    row: dict[str, Any] = {
        "model_num": run.model_num,
        "run_name": run.name,
        "run_dir": f"{RUNS_DIR}/{run.name}",
        "status": "pending",
        "error": "",
        "attempts": len(attempts),
        "dataset": run.dataset,
        "model": run.model,
        "seed": run.seed,
        "steps": int(run.config["steps"]),
        "train_seconds": math.nan,
        "eval_seconds": math.nan,
        "representation": "",
    }
    row["config"] = json.dumps(run.config, sort_keys=True)
    for key, value in run.hparams.items():
        row[f"hp.{key}"] = value
    done = read_json_or_none(path / DONE_NAME) if is_done(path) else None
    if done is None:
        failed = read_json_or_none(path / FAILED_NAME)
        if failed is not None:
            row["status"] = "failed"
            row["error"] = str(failed.get("error", ""))
        return row
    row["status"] = "done"
    row["train_seconds"] = float(done.get("train_seconds", math.nan))
    row["eval_seconds"] = float(done.get("eval_seconds", math.nan))
    metrics = read_json_or_none(RunDir(path).metrics) or {}
    reps = metrics.get("representations") or {}
    if reps:
        kind = next(iter(reps))
        row["representation"] = kind
        _flatten_scores(reps[kind].get("scores") or {}, row)
        names = (metrics.get("dataset") or {}).get("factor_names")
        _flatten_factor_scores(reps[kind].get("metrics") or {}, names, row)
    recon = metrics.get("reconstruction") or {}
    for key in ("bce_per_pixel", "mse_per_pixel"):
        value = recon.get(key)
        row[f"recon.{key}"] = float(value) if isinstance(value, (int, float)) else math.nan
    return row


def collect(study_dir: str | os.PathLike[str], spec: StudySpec | None = None,
            runs: Sequence[RunSpec] | None = None) -> Any:
    """The results table of a study directory as a ``pandas.DataFrame``.

    Args:
        study_dir: the study directory (holds ``study.yaml`` and ``runs/``).
        spec: the study's spec (default: read ``study.yaml``).
        runs: the expanded runs (default: expanded from ``spec``, with the overrides
            recorded in ``study_state.json`` applied).

    Raises:
        FileNotFoundError: no ``study.yaml`` in ``study_dir``.
    """
    import pandas as pd

    from disentkit.study.spec import load_spec

    study = Path(study_dir).expanduser()
    if runs is None:
        if spec is None:
            spec_file = study / SPEC_NAME
            if not spec_file.is_file():
                raise FileNotFoundError(
                    f"{str(study)!r} is not a study directory (no {SPEC_NAME}); start one "
                    "with: disentkit study run SPEC --out DIR"
                )
            spec = load_spec(spec_file)
        runs = override_runs(expand(spec), read_overrides(study))
    rows = [run_row(study, r) for r in runs]
    frame = pd.DataFrame(rows)
    hp = sorted(c for c in frame.columns if c.startswith("hp."))
    factor = [c for c in frame.columns if c.startswith(FACTOR_PREFIX)]  # the dataset's order
    rest = sorted(c for c in frame.columns
                  if c not in IDENTITY_COLUMNS and c not in hp and c not in factor)
    return frame[[*IDENTITY_COLUMNS, *hp, *rest, *factor]]


def write_results(study_dir: str | os.PathLike[str], frame: Any) -> tuple[Path, Path]:
    """Write ``results.parquet`` and ``results.csv`` atomically; returns both paths.

    Hyper-parameter columns that mix numbers and strings are stored as strings in the
    Parquet file (Parquet columns have one type); the CSV keeps the values as written.
    """
    study = Path(study_dir).expanduser()
    table = frame.copy()
    for column in table.columns:
        if table[column].dtype == object:
            kinds = {type(v) for v in table[column] if v is not None and v == v}
            if len(kinds) > 1:
                table[column] = [None if v is None or v != v else str(v)
                                 for v in table[column]]
    parquet = atomic_write(study / RESULTS_PARQUET,
                           lambda tmp: table.to_parquet(tmp, index=False))
    csv = atomic_write(study / RESULTS_CSV, lambda tmp: frame.to_csv(tmp, index=False))
    return parquet, csv


def read_results(study_dir: str | os.PathLike[str]) -> Any:
    """The study's results table from ``results.parquet`` (or ``results.csv``).

    Raises:
        FileNotFoundError: no such directory, or neither file exists (says how to build
            them).
    """
    import pandas as pd

    study = Path(study_dir).expanduser()
    if (study / RESULTS_PARQUET).is_file():
        return pd.read_parquet(study / RESULTS_PARQUET)
    if (study / RESULTS_CSV).is_file():
        return pd.read_csv(study / RESULTS_CSV)
    if not study.is_dir():
        raise FileNotFoundError(f"no study directory at {str(study)!r}")
    raise FileNotFoundError(
        f"no {RESULTS_PARQUET} or {RESULTS_CSV} in {str(study)!r}: run `disentkit study run` "
        f"to run the study, or `disentkit study collect {study}` to rebuild the table from "
        "its run directories, first"
    )
