"""The layout of a run directory and of a study directory, and the readers of their JSON.

Every file name a run or a study writes is spelled here once; the trainer, the evaluation,
the figures, the reports, the study runner and the command line build their paths from
these names (or from :class:`RunDir` / :class:`StudyDir`). This module imports nothing
heavy (no numpy, no torch), so any layer may use it.

A run directory::

    config.json              the resolved run config
    checkpoints/last.ckpt    the trainer's resume state
    model.safetensors        the weights to share
    model.json               the recipe to rebuild the model
    metrics.json             the scores of the evaluation
    log/metrics.csv          the training log
    log/trackers.json        the experiment trackers' run ids (a resumed run continues them)
    log/tensorboard/, log/mlruns/, log/wandb/   the trackers' default folders
    figures/                 the rendered figures
    report.html              the run's page

plus, in a study, the study's records: ``attempts.jsonl`` (a line per start),
``failed.json`` (the last error) and ``study_run.json`` (written last, when the run is done).

A study directory::

    study.yaml               the spec it was started with
    runs/run-NNNNN/          one run directory per run
    results.parquet, results.csv
    figures/, report.html    the study's page
    ray/                     Ray Tune's experiment records

Example:
    >>> run = RunDir("runs/demo")
    >>> run.config.as_posix(), run.checkpoint.as_posix(), run.metrics_csv.as_posix()
    ('runs/demo/config.json', 'runs/demo/checkpoints/last.ckpt', 'runs/demo/log/metrics.csv')
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ATTEMPTS_NAME",
    "CHECKPOINT_PATH",
    "CONFIG_NAME",
    "DEFAULT_RUNS_ROOT",
    "DONE_NAME",
    "FAILED_NAME",
    "FIGURES_DIR",
    "LOCK_NAME",
    "LOG_DIR",
    "METRICS_CSV",
    "METRICS_NAME",
    "MLRUNS_DIR",
    "MODEL_JSON_NAME",
    "PAIRED_PREFIX",
    "PAPER_CSV",
    "PAPER_MD",
    "PREVIOUS_CHECKPOINT_NAME",
    "RAY_DIR",
    "REPORT_NAME",
    "RESULTS_CSV",
    "RESULTS_PARQUET",
    "RUNS_DIR",
    "SPEC_NAME",
    "STATE_NAME",
    "TENSORBOARD_DIR",
    "TRACKERS_JSON",
    "WEIGHTS_NAME",
    "RunDir",
    "StudyDir",
    "paired_csv_name",
    "read_json",
    "read_json_or_none",
]

# --------------------------------------------------------------------------- a run

CONFIG_NAME = "config.json"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PATH = Path(CHECKPOINTS_DIR) / "last.ckpt"
PREVIOUS_CHECKPOINT_NAME = "previous.ckpt"  # the checkpoint last.ckpt replaced
WEIGHTS_NAME = "model.safetensors"
MODEL_JSON_NAME = "model.json"
METRICS_NAME = "metrics.json"
LOG_DIR = "log"
METRICS_CSV = Path(LOG_DIR) / "metrics.csv"
TRACKERS_JSON = Path(LOG_DIR) / "trackers.json"  # run ids of TensorBoard, MLflow, W&B
TENSORBOARD_DIR = Path(LOG_DIR) / "tensorboard"  # default TensorBoard event folder
MLRUNS_DIR = Path(LOG_DIR) / "mlruns"  # default MLflow file store
FIGURES_DIR = "figures"
REPORT_NAME = "report.html"
LOCK_NAME = ".lock"  # its OS lock: one writer per run or study directory (disentkit._lock)
#: where ``fit`` puts a run when no run directory is given: ``runs/<model>-<data>-seed<seed>``
DEFAULT_RUNS_ROOT = "runs"

# --------------------------------------------------------------------------- a study

SPEC_NAME = "study.yaml"
RUNS_DIR = "runs"
ATTEMPTS_NAME = "attempts.jsonl"
FAILED_NAME = "failed.json"
DONE_NAME = "study_run.json"
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
STATE_NAME = "study_state.json"  # the overrides (--set) a study was started with
PAPER_CSV = "paper_table.csv"
PAPER_MD = "paper_table.md"
FACTOR_CSV = "factor_table.csv"
PAIRED_PREFIX = "paired_vs_"
RAY_DIR = "ray"


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is read or created).

    Attributes:
        path: the run directory.
    """

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_PATH

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_NAME

    @property
    def model_json(self) -> Path:
        return self.path / MODEL_JSON_NAME

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def log(self) -> Path:
        return self.path / LOG_DIR

    @property
    def metrics_csv(self) -> Path:
        return self.path / METRICS_CSV

    @property
    def trackers(self) -> Path:
        return self.path / TRACKERS_JSON

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def mlruns(self) -> Path:
        return self.path / MLRUNS_DIR

    @property
    def figures(self) -> Path:
        return self.path / FIGURES_DIR

    @property
    def report(self) -> Path:
        return self.path / REPORT_NAME

    @property
    def attempts(self) -> Path:
        return self.path / ATTEMPTS_NAME

    @property
    def failed(self) -> Path:
        return self.path / FAILED_NAME

    @property
    def done(self) -> Path:
        return self.path / DONE_NAME


@dataclass(frozen=True)
class StudyDir:
    """The paths of a study directory (nothing is read or created).

    Example:
        >>> StudyDir("studies/x").results_parquet.as_posix()
        'studies/x/results.parquet'
    """

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def spec(self) -> Path:
        return self.path / SPEC_NAME

    @property
    def runs(self) -> Path:
        return self.path / RUNS_DIR

    @property
    def results_parquet(self) -> Path:
        return self.path / RESULTS_PARQUET

    @property
    def results_csv(self) -> Path:
        return self.path / RESULTS_CSV

    @property
    def figures(self) -> Path:
        return self.path / FIGURES_DIR

    @property
    def report(self) -> Path:
        return self.path / REPORT_NAME

    @property
    def ray(self) -> Path:
        return self.path / RAY_DIR

    @property
    def state(self) -> Path:
        return self.path / STATE_NAME

    @property
    def paper_csv(self) -> Path:
        return self.path / PAPER_CSV

    @property
    def paper_md(self) -> Path:
        return self.path / PAPER_MD


def paired_csv_name(reference: str) -> str:
    """File name of a study's paired comparison against the model ``reference``.

    Example:
        >>> paired_csv_name("qlae"), paired_csv_name("beta_vae (beta=4)")
        ('paired_vs_qlae.csv', 'paired_vs_beta_vae_beta_4.csv')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", reference).strip("_.") or "reference"
    return f"{PAIRED_PREFIX}{safe}.csv"


# --------------------------------------------------------------------------- readers


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object from ``path``; every failure is a ``ValueError`` naming the file.

    Raises:
        ValueError: the file cannot be read (missing included), is not valid JSON, or holds
            something other than a JSON object.

    Example:
        >>> import tempfile
        >>> bad = Path(tempfile.mkdtemp()) / "metrics.json"
        >>> _ = bad.write_text("[1, 2]")
        >>> read_json(bad)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: '.../metrics.json' should hold a JSON object; found list
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {str(p)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(p)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{str(p)!r} should hold a JSON object; found {type(data).__name__}")
    return data


def read_json_or_none(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """:func:`read_json`, or ``None`` where it would fail (a file not written yet, a torn
    or foreign file): for records whose absence is an answer.

    Example:
        >>> read_json_or_none("no/such/file.json") is None
        True
    """
    try:
        return read_json(path)
    except ValueError:
        return None
