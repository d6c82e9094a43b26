"""Experiment trackers beside ``log/metrics.csv``: TensorBoard, MLflow, Weights & Biases.

A run's ``loggers`` section (:class:`~disentkit.train.config.LoggersConfig`) names the
trackers and their settings. Each tracker is a :class:`Tracker` that talks to its library
directly:

- ``tensorboard``: ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard``
  package) writing event files into ``loggers.tensorboard.dir`` (default
  ``RUN/log/tensorboard``);
- ``mlflow``: ``mlflow.MlflowClient`` (``mlflow-skinny`` is enough) on
  ``loggers.mlflow.tracking_uri`` (default: a file store in ``RUN/log/mlruns``; MLflow 3
  keeps file stores in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which is set
  for a file store unless the environment sets it already);
- ``wandb``: ``wandb.init(id=..., resume="allow")``, one run object per run directory (so
  the members of a vectorised run log side by side).

What reaches them. While training (:func:`open_trackers`, called by the trainers): the
run config (TensorBoard: as text; MLflow: flat params, those already recorded kept; W&B:
the run's config), the averaged losses every ``log_every`` steps and the scores during
training (``eval/<representation>/<score key>``), at the training step. After the run is
scored and its report drawn (:func:`log_run_outputs`, called by ``disentkit train``,
``disentkit evaluate`` and the study runner): every score of ``metrics.json`` as
``scores/<representation>/<score key>`` with its metric ID as
``scores/<representation>/<metric>.metric_id`` (TensorBoard: scalars and one text;
MLflow: metrics and tags; W&B: the run summary), the reconstruction errors as
``scores/reconstruction/<key>``, and the PNG figures of ``RUN/figures`` (TensorBoard:
images; MLflow: artifacts under ``figures/``; W&B: images), at the model's step.

Resume. The trackers' run ids are saved in ``RUN/log/trackers.json``
(:data:`~disentkit.rundir.TRACKERS_JSON`) when a run starts. A resumed run, and
:func:`log_run_outputs` later, reopen the same tracker runs from it: the same MLflow run id
(set running again), the same W&B id (``resume="allow"``; offline, each start is a folder of
its own under ``wandb/`` holding that id, which ``wandb sync`` merges; online, W&B ignores
steps it already holds), the same
TensorBoard folder with ``purge_step`` at the checkpoint's step + 1, so the steps logged
after the checkpoint by the killed process are dropped from TensorBoard's view. MLflow's
history keeps such steps (it cannot delete points). A tracker whose settings now point
elsewhere (another tracking URI, experiment, project or entity) starts a new run there.

Example:
    >>> import tempfile
    >>> from disentkit.train.config import build_config
    >>> cfg = build_config({"model": "m", "data": "d"}, check_names=False)
    >>> open_trackers(cfg, tempfile.mkdtemp())  # no tracker configured: nothing opened
    []
"""

from __future__ import annotations

import abc
import importlib.util
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, ClassVar

from disentkit._atomic import write_json
from disentkit._validation import DisentkitWarning
from disentkit.rundir import RunDir, read_json, read_json_or_none
from disentkit.train.config import (
    LoggersConfig,
    MLflowConfig,
    RunConfig,
    TensorBoardConfig,
    WandbConfig,
)

__all__ = [
    "SCORES_PREFIX",
    "MLflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "check_trackers",
    "finish_trackers",
    "log_run_outputs",
    "open_trackers",
    "score_values",
]

#: prefix of the final scores' keys in every tracker: ``scores/<representation>/<key>``
SCORES_PREFIX = "scores/"
#: module each tracker imports, and how to install it
_PACKAGES = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", "pip install mlflow-skinny"),
    "wandb": ("wandb", "pip install wandb"),
}
_INSTALL_ALL = "pip install 'disentkit[trackers]'"


# --------------------------------------------------------------------------- the interface


class Tracker(abc.ABC):
    """One experiment tracker's run, opened for one run directory.

    ``record()`` is what ``log/trackers.json`` keeps to reopen the same tracker run.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def record(self) -> dict[str, Any]:
        """What reopens this tracker run (ids, folders), JSON-ready."""

    @abc.abstractmethod
    def log_params(self, config: Mapping[str, Any]) -> None:
        """Record the run config (nested, as :meth:`RunConfig.to_dict` gives it)."""

    @abc.abstractmethod
    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Record scalar ``values`` (losses, scores during training) at ``step``."""

    @abc.abstractmethod
    def log_summary(self, values: Mapping[str, float | str], step: int) -> None:
        """Record a run's final numbers and their labels (metric IDs, the strings)."""

    @abc.abstractmethod
    def log_figure(self, name: str, path: Path, step: int) -> None:
        """Record the PNG image at ``path`` as ``figures/<name>``."""

    @abc.abstractmethod
    def finish(self, status: str = "success") -> None:
        """Flush and close, marking the tracker run ``status`` (``"success"`` or
        ``"failed"``); the run stays resumable."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"eval": {"n_samples": 10}}`` → ``{"eval.n_samples": 10}``; non-scalars as text."""
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v if isinstance(v, int | float | str | bool) else json.dumps(v)
    return flat


def _path_in_run(value: str | None, run_dir: Path, default: Path) -> Path:
    """A folder setting: null → ``default``; relative → inside the run directory."""
    if value is None:
        return default
    path = Path(value).expanduser()
    return path if path.is_absolute() else run_dir / path


def _png_rgb(path: Path) -> Any:
    """The PNG at ``path`` as a uint8 array ``(H, W, 3)``."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))  # (H, W, 3)


# --------------------------------------------------------------------------- TensorBoard


class TensorBoardTracker(Tracker):
    """Event files written with ``torch.utils.tensorboard.SummaryWriter``.

    Args:
        log_dir: the folder of the event files.
        purge_step: when resuming, the first step logged again (events at and after it
            that an earlier process wrote are hidden by TensorBoard).
    """

    name = "tensorboard"

    def __init__(self, log_dir: Path, *, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def record(self) -> dict[str, Any]:
        return {"dir": str(self.log_dir)}

    def log_params(self, config: Mapping[str, Any]) -> None:
        text = json.dumps(config, indent=2, default=str)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "))  # a code block
        self.writer.flush()

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, float(value), global_step=step)
        self.writer.flush()  # a killed run keeps what it logged

    def log_summary(self, values: Mapping[str, float | str], step: int) -> None:
        labels = []
        for key, value in values.items():
            if isinstance(value, str):
                labels.append(f"- `{key}`: `{value}`")
            else:
                self.writer.add_scalar(key, float(value), global_step=step)
        if labels:
            self.writer.add_text("metric_ids", "\n".join(labels), global_step=step)
        self.writer.flush()

    def log_figure(self, name: str, path: Path, step: int) -> None:
        self.writer.add_image(f"figures/{name}", _png_rgb(path), global_step=step,
                              dataformats="HWC")
        self.writer.flush()

    def finish(self, status: str = "success") -> None:
        self.writer.close()


# --------------------------------------------------------------------------- MLflow


def _mlflow_uri(settings: MLflowConfig, run_dir: Path) -> str:
    """The tracking URI: as given, a folder as a ``file:`` URI, default RUN/log/mlruns."""
    uri = settings.tracking_uri
    if uri is not None and ("://" in uri or uri.startswith(("databricks", "file:"))):
        return uri
    return _path_in_run(uri, run_dir, RunDir(run_dir).mlruns).resolve().as_uri()


class MLflowTracker(Tracker):
    """One MLflow run through ``MlflowClient``: reopened when ``run_id`` still exists on
    the same tracking URI, else created (the experiment too)."""

    name = "mlflow"
    _BATCH = 100  # params per log_batch call (MLflow's limit); metrics go 1000 at a time

    def __init__(self, settings: MLflowConfig, run_dir: Path, *,
                 run_id: str | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = _mlflow_uri(settings, run_dir)
        if self.tracking_uri.startswith("file:"):
            # MLflow 3 refuses new file stores unless asked; disentkit's default is one
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self.client.get_experiment_by_name(settings.experiment)
        self.experiment_id = (experiment.experiment_id if experiment is not None
                              else self.client.create_experiment(settings.experiment))
        run = None
        if run_id is not None:
            with suppress(Exception):  # deleted or foreign: a new run
                run = self.client.get_run(run_id)
            if run is not None and (run.info.experiment_id != self.experiment_id
                                    or run.info.lifecycle_stage != "active"):
                run = None
        if run is None:
            run = self.client.create_run(
                self.experiment_id, run_name=settings.run_name or run_dir.name,
                tags={"disentkit.run_dir": str(run_dir.resolve())})
        else:
            self.client.update_run(run.info.run_id, status="RUNNING")
        self.run_id: str = run.info.run_id

    def record(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "run_id": self.run_id}

    def log_params(self, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        known = self.client.get_run(self.run_id).data.params  # params are write-once
        params = [Param(k, str(v)) for k, v in _flatten(config).items() if k not in known]
        for i in range(0, len(params), self._BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + self._BATCH])

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(step)) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def log_summary(self, values: Mapping[str, float | str], step: int) -> None:
        from mlflow.entities import RunTag

        self.log_metrics({k: v for k, v in values.items() if not isinstance(v, str)}, step)
        tags = [RunTag(k, v) for k, v in values.items() if isinstance(v, str)]
        for i in range(0, len(tags), self._BATCH):
            self.client.log_batch(self.run_id, tags=tags[i:i + self._BATCH])

    def log_figure(self, name: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path="figures")

    def finish(self, status: str = "success") -> None:
        self.client.set_terminated(self.run_id,
                                   status="FINISHED" if status == "success" else "FAILED")


# --------------------------------------------------------------------------- W&B


class WandbTracker(Tracker):
    """One W&B run (``wandb.init(id=run_id, resume="allow", reinit="create_new")``)."""

    name = "wandb"

    def __init__(self, settings: WandbConfig, run_dir: Path, *,
                 run_id: str | None = None) -> None:
        import wandb

        self.project, self.entity = settings.project, settings.entity
        folder = _path_in_run(settings.dir, run_dir, RunDir(run_dir).log)
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings.project, entity=settings.entity,
            name=settings.name or run_dir.name, group=settings.group,
            tags=list(settings.tags) or None, mode=settings.mode, dir=str(folder),
            id=run_id, resume="allow", reinit="create_new",
        )
        self.run_id: str = self.run.id

    def record(self) -> dict[str, Any]:
        return {"id": self.run_id, "project": self.project, "entity": self.entity}

    def log_params(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(dict(config), allow_val_change=True)

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        self.run.log({k: float(v) for k, v in values.items()}, step=int(step))

    def log_summary(self, values: Mapping[str, float | str], step: int) -> None:
        self.run.summary.update(dict(values))

    def log_figure(self, name: str, path: Path, step: int) -> None:
        import wandb

        # W&B steps only grow: a reopened online run continues after its last step
        self.run.log({f"figures/{name}": wandb.Image(str(path))},
                     step=max(int(step), int(self.run.step)))

    def finish(self, status: str = "success") -> None:
        self.run.finish(exit_code=0 if status == "success" else 1)


# --------------------------------------------------------------------------- opening


def check_trackers(loggers: LoggersConfig) -> None:
    """Check that every configured tracker's package is installed.

    Raises:
        ValueError: naming the tracker, the package and the ``pip install`` line.

    Example:
        >>> check_trackers(LoggersConfig())  # CSV only: nothing to check
    """
    for name in loggers.names[1:]:
        module, hint = _PACKAGES[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ValueError(
                f"logger {name!r} needs the {module} package, which is not installed: "
                f"{hint} (all trackers: {_INSTALL_ALL}; or drop {name!r} from loggers)"
            )


def _matches(saved: Mapping[str, Any] | None, **where: Any) -> bool:
    return saved is not None and all(saved.get(k) == v for k, v in where.items())


def open_trackers(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    start_step: int | None = None,
) -> list[Tracker]:
    """Open the trackers ``config.loggers`` names for ``run_dir``, continuing the tracker
    runs saved in its ``log/trackers.json`` and saving the ids of the ones opened there.

    Args:
        config: the run's config.
        run_dir: the run directory.
        start_step: the step training starts from (0 for a new run, the checkpoint's step
            on resume): the config is logged, and TensorBoard hides what was logged after
            it. ``None``: not training (:func:`log_run_outputs`).

    Returns:
        one :class:`Tracker` per configured tracker (close them with
        :func:`finish_trackers`).

    Raises:
        ValueError: a configured tracker's package is missing.
    """
    loggers = config.loggers
    check_trackers(loggers)
    path = Path(run_dir).expanduser()
    if len(loggers.names) == 1:
        return []
    ids_file = RunDir(path).trackers
    saved: dict[str, Any] = read_json_or_none(ids_file) or {}
    trackers: list[Tracker] = []
    try:
        if isinstance(loggers.tensorboard, TensorBoardConfig):
            folder = _path_in_run(loggers.tensorboard.dir, path, RunDir(path).tensorboard)
            trackers.append(TensorBoardTracker(
                folder, purge_step=None if start_step is None else start_step + 1))
        if isinstance(loggers.mlflow, MLflowConfig):
            before = saved.get("mlflow")
            same = _matches(before, tracking_uri=_mlflow_uri(loggers.mlflow, path))
            trackers.append(MLflowTracker(loggers.mlflow, path,
                                          run_id=before["run_id"] if same else None))
        if isinstance(loggers.wandb, WandbConfig):
            before = saved.get("wandb")
            same = _matches(before, project=loggers.wandb.project, entity=loggers.wandb.entity)
            trackers.append(WandbTracker(loggers.wandb, path,
                                         run_id=before["id"] if same else None))
    except BaseException:
        for tracker in trackers:
            with suppress(Exception):
                tracker.finish("failed")
        raise
    ids_file.parent.mkdir(parents=True, exist_ok=True)
    write_json(ids_file, {**saved, **{t.name: t.record() for t in trackers}})
    if start_step is not None:
        params = config.to_dict()
        for tracker in trackers:
            tracker.log_params(params)
    return trackers


def finish_trackers(trackers: Sequence[Tracker], status: str = "success") -> None:
    """``finish(status)`` every tracker (``"success"`` or ``"failed"``); a failure is a
    :class:`DisentkitWarning`, not an error (what was logged stays, and the run itself must
    not be lost to a tracker)."""
    for tracker in trackers:
        try:
            tracker.finish(status)
        except Exception as exc:  # each tracker gets its chance
            warnings.warn(f"could not close the {tracker.name} run: {exc}", DisentkitWarning,
                          stacklevel=2)


# --------------------------------------------------------------------------- after a run


def score_values(metrics: Mapping[str, Any]) -> dict[str, float | str]:
    """The scores of a ``metrics.json`` content as tracker keys.

    ``scores/<representation>/<score key>`` for each number, the same key ending in
    ``.metric_id`` for each metric ID, ``scores/reconstruction/<key>`` for the
    reconstruction errors; null scores (NaN) are left out.

    Example:
        >>> score_values({"representations": {"mean": {"scores": {
        ...     "mig": 0.5, "mig.metric_id": "mig/hist20@1", "sap": None}}}})
        {'scores/mean/mig': 0.5, 'scores/mean/mig.metric_id': 'mig/hist20@1'}
    """
    out: dict[str, float | str] = {}
    for kind, entry in (metrics.get("representations") or {}).items():
        for key, value in (entry.get("scores") or {}).items():
            name = f"{SCORES_PREFIX}{kind}/{key}"
            if isinstance(value, str):
                out[name] = value
            elif isinstance(value, int | float) and not isinstance(value, bool) and \
                    math.isfinite(value):
                out[name] = float(value)
    for key, value in (metrics.get("reconstruction") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{SCORES_PREFIX}reconstruction/{key}"] = float(value)
    return out


def log_run_outputs(
    run_dir: str | os.PathLike[str], *, scores: bool = True, figures: bool = True
) -> list[str]:
    """Log a finished run's scores (``metrics.json``) and figures (``figures/*.png``) to
    the trackers its config names, continuing the tracker runs its training used.

    Call it after the run is scored and its report (which draws the figures) is written.
    Missing ``metrics.json`` or figures are skipped.

    Args:
        run_dir: a run directory holding ``config.json``.
        scores: log the scores and their metric IDs (:func:`score_values`).
        figures: log the PNG figures.

    Returns:
        the names of the trackers logged to (``[]`` when the run uses none).

    Raises:
        ValueError: no readable ``config.json``, or a tracker's package is missing.
    """
    run = RunDir(Path(run_dir).expanduser())
    config = RunConfig.from_dict(read_json(run.config), check_names=False)
    if len(config.loggers.names) == 1:
        return []
    trackers = open_trackers(config, run.path)
    try:
        metrics = read_json_or_none(run.metrics) or {}
        step = int((metrics.get("model") or {}).get("step") or config.steps)
        values = score_values(metrics) if scores else {}
        pngs = sorted(run.figures.glob("*.png")) if figures and run.figures.is_dir() else []
        for tracker in trackers:
            if values:
                tracker.log_summary(values, step)
            for png in pngs:
                tracker.log_figure(png.stem, png, step)
    finally:
        finish_trackers(trackers)
    return [t.name for t in trackers]
