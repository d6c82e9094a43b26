"""One run of a study (:func:`train_run`, what an executor runs) and the progress display
the executors drive (:class:`StudyProgress`).

Both executors use these: the local one in :mod:`disentkit.study.runner`, the Ray one in
:mod:`disentkit.study._ray` (whose trainable calls :func:`train_run` in a Ray worker).
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
import warnings
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disentkit._atomic import write_json
from disentkit._console import stderr
from disentkit._validation import DisentkitWarning
from disentkit.rundir import read_json
from disentkit.study.overrides import override_runs, read_overrides
from disentkit.study.results import (
    ATTEMPTS_NAME,
    DONE_NAME,
    FAILED_NAME,
    SPEC_NAME,
    is_done,
    read_attempts,
    run_dir,
)
from disentkit.study.spec import RunSpec, expand, load_spec, parse_model_nums
from disentkit.train.checkpoint import checkpoint_step
from disentkit.train.trackers import log_run_outputs

__all__ = ["StudyProgress", "train_run"]


# ------------------------------------------------------------------------- one run


def _start_step(path: Path) -> int:
    """The step a run continues from: its checkpoint's (0 when absent or unreadable)."""
    with suppress(Exception):
        return checkpoint_step(path)
    return 0


def _append_line(file: Path, record: dict[str, Any]) -> None:
    with open(file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def train_run(study_dir: str | os.PathLike[str], model_num: int, *,
              progress: bool = False) -> dict[str, Any]:
    """Train (or continue) and score run ``model_num`` of the study in ``study_dir``.

    Does nothing but return the recorded summary when the run is already done.

    Returns:
        ``study_run.json``'s content: ``model_num``, ``train_seconds``, ``eval_seconds``,
        ``attempts`` and the run's flat scores.

    Raises:
        Exception: whatever training or evaluation raised, after writing ``failed.json``.
    """
    from disentkit.train import RunConfig, fit  # looked up per call: patchable

    study = Path(study_dir).expanduser()
    run = _study_run(study, model_num)
    path = run_dir(study, run.model_num)
    if is_done(path):
        return read_json(path / DONE_NAME)
    attempt, previous = _start_attempt(path)
    cfg = RunConfig.from_dict(run.config)
    tick = time.perf_counter()
    try:
        fit(cfg, run_dir=path, resume=True, progress=progress)
    except BaseException as exc:
        _record_failure(path, run, attempt, "training", exc)
        raise
    return _score_run(path, run, attempt, previous, time.perf_counter() - tick)


def train_group(study_dir: str | os.PathLike[str], model_nums: Iterable[int], *,
                progress: bool = False) -> list[dict[str, Any]]:
    """Train runs ``model_nums`` of a study as one vectorised model, then score each.

    The runs must be compatible (:func:`disentkit.train.vectorized.vectorize_problem`):
    same everything but the seed and the hyper-parameters a model lets members vary. Each
    run's directory ends as :func:`train_run` leaves it; ``train_seconds`` is the group's
    training time divided among its members. Runs already done are skipped.

    Returns:
        the runs' ``study_run.json`` contents, in the order of ``model_nums``.

    Raises:
        ValueError: the runs cannot train vectorised (nothing is written then), or whatever
            training or evaluation raised, after writing each affected run's ``failed.json``.
    """
    from disentkit.train import RunConfig
    from disentkit.train.vectorized import fit_vectorized, vectorize_problem

    study = Path(study_dir).expanduser()
    runs = [_study_run(study, n) for n in model_nums]
    todo = [r for r in runs if not is_done(run_dir(study, r.model_num))]
    configs = [RunConfig.from_dict(r.config) for r in todo]
    problem = vectorize_problem(configs) if todo else None
    if problem is not None:
        raise ValueError(f"runs {[r.model_num for r in todo]} cannot train vectorised: {problem}")
    paths = [run_dir(study, r.model_num) for r in todo]
    group = [r.model_num for r in todo]
    started = [_start_attempt(p, group=group) for p in paths]
    tick = time.perf_counter()
    if todo:
        try:
            fit_vectorized(configs, paths, resume=True, progress=progress)
        except BaseException as exc:
            for path, run, (attempt, _) in zip(paths, todo, started, strict=True):
                _record_failure(path, run, attempt, "training", exc)
            raise
    share = (time.perf_counter() - tick) / max(len(todo), 1)
    for path, run, (attempt, previous) in zip(paths, todo, started, strict=True):
        _score_run(path, run, attempt, previous, share)
    return [read_json(run_dir(study, r.model_num) / DONE_NAME) for r in runs]


def _study_run(study: Path, model_num: int) -> RunSpec:
    """Run ``model_num`` of the study, with the overrides the study was started with."""
    runs = expand(load_spec(study / SPEC_NAME))
    (run,) = override_runs([runs[parse_model_nums(str(model_num), len(runs))[0]]],
                           read_overrides(study))
    return run


def _start_attempt(path: Path, **extra: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Append this attempt to the run's ``attempts.jsonl``; returns it and the earlier ones."""
    path.mkdir(parents=True, exist_ok=True)
    previous = read_attempts(path)
    attempt = {
        "attempt": len(previous) + 1,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_step": _start_step(path),
        "started_at": time.time(),
        **extra,
    }
    _append_line(path / ATTEMPTS_NAME, attempt)
    return attempt, previous


def _record_failure(path: Path, run: RunSpec, attempt: dict[str, Any], stage: str,
                    exc: BaseException) -> None:
    write_json(path / FAILED_NAME, {
        "model_num": run.model_num,
        "attempt": attempt["attempt"],
        "stage": stage,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(limit=20),
        "failed_at": time.time(),
    })


def _score_run(path: Path, run: RunSpec, attempt: dict[str, Any],
               previous: list[dict[str, Any]], train_seconds: float) -> dict[str, Any]:
    """Score a trained run with :func:`~disentkit.train.evaluate_run`; write
    ``study_run.json`` (or ``failed.json`` and re-raise)."""
    from disentkit.train import RunConfig, evaluate_run

    cfg = RunConfig.from_dict(run.config)
    tick = time.perf_counter()
    try:
        result = evaluate_run(path, n_samples=cfg.eval.n_samples, metrics=cfg.eval.metrics,
                              mode=cfg.eval.mode, seed=cfg.eval.seed,
                              batch_size=cfg.eval.batch_size,
                              n_bootstrap=cfg.eval.n_bootstrap, baselines=cfg.eval.baselines,
                              options=cfg.eval.options)
    except BaseException as exc:
        _record_failure(path, run, attempt, "evaluation", exc)
        raise
    evaluated = time.perf_counter()
    earlier = sum(float(a.get("train_seconds", 0.0)) for a in previous)
    reps = result.get("representations") or {}
    scores = next(iter(reps.values()))["scores"] if reps else {}
    summary = {
        "model_num": run.model_num,
        "run_name": run.name,
        "train_seconds": earlier + train_seconds,
        "eval_seconds": evaluated - tick,
        "attempts": attempt["attempt"],
        "host": attempt["host"],
        "finished_at": time.time(),
        "scores": {k: v for k, v in scores.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)},
    }
    with suppress(FileNotFoundError):
        (path / FAILED_NAME).unlink()
    write_json(path / DONE_NAME, summary)
    _log_to_trackers(path)
    return summary


def _log_to_trackers(path: Path) -> None:
    """The run's scores to the trackers of its loggers section; the run is done without
    it, so a tracker's failure is a warning."""
    try:
        log_run_outputs(path)
    except Exception as exc:
        warnings.warn(f"could not log the scores of {path} to its trackers: {exc}",
                      DisentkitWarning, stacklevel=2)


# --------------------------------------------------------------------------- progress


@dataclass
class _Counts:
    total: int
    done: int = 0
    running: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    retried: int = 0

    def line(self) -> str:
        text = (f"{self.done}/{self.total} done · {len(self.running)} running · "
                f"{len(self.failed)} failed")
        return text + (f" · {self.retried} retried" if self.retried else "")


class StudyProgress:
    """Runs done / running / failed, shown as a rich progress bar on stderr.

    Used by both executors (the Ray executor drives it from a Tune callback in the
    driver process). ``enabled=False`` keeps the counts without drawing anything.
    """

    def __init__(self, total: int, already_done: int, *, enabled: bool = True,
                 label: str = "study") -> None:
        self.counts = _Counts(total=total, done=already_done)
        self._enabled = enabled
        self._label = label
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> StudyProgress:
        if self._enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.fields[counts]}"),
                                      TimeElapsedColumn(), console=stderr())
            self._progress.__enter__()
            self._task = self._progress.add_task(self._label, total=self.counts.total,
                                                 completed=self.counts.done,
                                                 counts=self.counts.line())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def _update(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.counts.done,
                                  counts=self.counts.line())

    def started(self, num: int) -> None:
        self.counts.running.add(num)
        self._update()

    def finished(self, num: int) -> None:
        self.counts.running.discard(num)
        self.counts.failed.discard(num)
        self.counts.done += 1
        self._update()

    def failed(self, num: int) -> None:
        self.counts.running.discard(num)
        self.counts.failed.add(num)
        self._update()

    def retried(self, num: int) -> None:
        self.counts.retried += 1
        self._update()

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, style="dim", soft_wrap=True)
