"""Run a study: every run of a spec, on Ray Tune (local or a cluster) or in this process.

A study directory holds::

    study.yaml            the spec it was started with (a different spec is refused)
    study_state.json      the overrides (``--set``) it was started with (other overrides
                          are refused; see disentkit.study.overrides)
    runs/run-NNNNN/       one ordinary run directory per run (config.json, checkpoints/,
                          model.safetensors, metrics.json, ...) plus the study's records:
                          attempts.jsonl (a line per start: pid, host, step it started
                          from), failed.json (the last error), study_run.json (written
                          last, when the run was trained and evaluated)
    results.parquet       one row per run, rebuilt from runs/ (see disentkit.study.results)
    results.csv
    ray/                  Ray Tune's experiment records

Fault tolerance lives in the run directories, not in any one process. Each run trains
with :func:`disentkit.train.fit` ``(resume=True)``: it starts, or continues from its last
checkpoint (``checkpoints/last.ckpt``, written atomically every ``checkpoint_every``
steps), then is scored with :func:`disentkit.train.evaluate_run`, and only then gets
``study_run.json``. A run that raised or whose process was killed is retried by Ray Tune
(``FailureConfig(max_failures=max_retries)``; the ``local`` executor retries in a loop)
and resumes from its checkpoint. Running a study again runs only the runs without
``study_run.json``: a finished run is never redone. On a Ray cluster the study directory
must be on storage every node sees (a shared file system), since the runs' checkpoints
are read from there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from disentkit._atomic import atomic_write
from disentkit._lock import hold_directory
from disentkit.rundir import StudyDir
from disentkit.study._trial import StudyProgress, train_group, train_run
from disentkit.study.overrides import (
    override_runs,
    record_overrides,
)
from disentkit.study.results import (
    SPEC_NAME,
    collect,
    is_done,
    run_dir,
    write_results,
)
from disentkit.study.spec import RunSpec, StudySpec, expand, load_spec, parse_model_nums

EXECUTORS = ("ray", "local", "vectorized")
#: most runs the ``vectorized`` executor trains as one model
GROUP_SIZE = 8


# --------------------------------------------------------------------------- study dir


def init_study_dir(spec: StudySpec, out: str | os.PathLike[str] | None = None, *,
                   overrides: Iterable[str] | None = None) -> Path:
    """Create (or reopen) the study directory of ``spec`` and store the spec in it.

    Args:
        spec: the study spec.
        out: the directory; default ``studies/<name>``.
        overrides: ``"key=value"`` overrides of every run (recorded in
            ``study_state.json``; see :mod:`disentkit.study.overrides`).

    Raises:
        ValueError: the directory already holds a study with a different spec (its run
            numbers would no longer match) or different overrides.
    """
    import yaml

    study = Path(out if out is not None else Path("studies") / spec.name).expanduser()
    study.mkdir(parents=True, exist_ok=True)
    stored = study / SPEC_NAME
    if stored.is_file():
        previous = load_spec(stored).to_dict()
        if previous != spec.to_dict():
            changed = sorted(k for k in set(previous) | set(spec.to_dict())
                             if previous.get(k) != spec.to_dict().get(k))
            raise ValueError(
                f"{str(study)!r} holds a study started from a different spec (differs in: "
                f"{', '.join(changed)}); its run numbers would change. Use another --out "
                f"directory, or restore the spec in {stored}"
            )
        record_overrides(study, overrides)
        return study
    record_overrides(study, overrides)
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
    atomic_write(stored, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return study


def check_datasets(runs: Iterable[Any]) -> None:
    """Build each procedural dataset the runs use once, so that a bad dataset option fails
    before any run starts (official datasets are left alone: their files may live only on
    the machines that run them).

    Raises:
        ValueError: a dataset that cannot be built with its options, naming the runs.
    """
    from disentkit.data import DATASETS, get_dataset

    seen: dict[str, list[int]] = {}
    configs: dict[str, tuple[str, dict[str, Any]]] = {}
    for run in runs:
        name, options = run.config["data"], dict(run.config.get("data_options") or {})
        if DATASETS[name].kind != "procedural":
            continue
        key = json.dumps([name, options], sort_keys=True, default=str)
        seen.setdefault(key, []).append(run.model_num)
        configs[key] = (name, options)
    for key, (name, options) in configs.items():
        try:
            get_dataset(name, **options)
        except (TypeError, ValueError) as exc:
            nums = seen[key]
            which = f"runs {nums[:5]}{' ...' if len(nums) > 5 else ''}"
            raise ValueError(
                f"dataset {name!r} with options {options} cannot be built ({which}): {exc}"
            ) from None


# ------------------------------------------------------------------------------ study


@dataclass(frozen=True)
class StudyOutcome:
    """What :func:`run_study` did.

    Attributes:
        study_dir: the study directory.
        selected: the model numbers asked for.
        skipped: those already done before this call (not run again).
        ran: those this call ran (trained or continued).
        results: the results table of the whole study (``pandas.DataFrame``).
    """

    study_dir: Path
    selected: tuple[int, ...]
    skipped: tuple[int, ...]
    ran: tuple[int, ...]
    results: Any = field(repr=False)

    def count(self, status: str) -> int:
        """Runs of the selection with ``status`` (``done``, ``failed``, ``pending``)."""
        rows = self.results[self.results["model_num"].isin(self.selected)]
        return int((rows["status"] == status).sum())


def run_study(
    spec: str | os.PathLike[str] | StudySpec,
    out: str | os.PathLike[str] | None = None,
    *,
    model_nums: str | Iterable[int] | None = None,
    executor: Literal["ray", "local", "vectorized"] = "ray",
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    max_concurrent: int | None = None,
    max_retries: int | None = None,
    overrides: Iterable[str] | None = None,
    progress: bool = True,
    note: Callable[[str], None] | None = None,
    group_size: int = GROUP_SIZE,
) -> StudyOutcome:
    """Run the runs of a study that are not done yet, then rebuild its results table.

    Args:
        spec: a study spec file or a loaded :class:`~disentkit.study.spec.StudySpec`.
        out: the study directory (default ``studies/<name>``).
        model_nums: which runs (``"17"``, ``"3-9"``, ``"0,4,7-8"`` or integers); default all.
        executor: ``"ray"`` (Ray Tune: concurrent runs, retries), ``"local"`` (one run
            after another in this process, with retries; for job arrays and debugging) or
            ``"vectorized"``: in this process, runs that differ only in seed (and the
            hyper-parameters their model lets vary) train in groups of up to
            ``group_size`` as one vectorised model (:func:`train_group`); runs of models
            that refuse it, runs left alone and groups that fail train as ``"local"``.
        address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ...); default:
            start a local Ray instance.
        num_cpus: CPUs of the local Ray instance (default: all of this machine's).
        cpus_per_trial: overrides the spec's ``resources`` (as do the next three).
        gpus_per_trial: overrides the spec's ``resources``.
        max_concurrent: overrides the spec's ``resources``.
        max_retries: overrides the spec's ``resources``.
        overrides: ``"key=value"`` strings applied to every run's config after the spec
            is expanded: ``train.<key>`` sets the run-config field ``<key>``
            (``train.steps=20``), any other key is a run-config dotted key
            (``eval.n_samples=1000``, ``model.<option>``). Recorded in the study
            directory; rerunning a study with other overrides is refused (see
            :mod:`disentkit.study.overrides`).
        progress: show runs done / running / failed.
        note: called with one-line messages (default: printed under the progress bar).
        group_size: most runs per vectorised group (``executor="vectorized"``).

    Returns:
        a :class:`StudyOutcome`; ``results.parquet`` and ``results.csv`` are written.

    Raises:
        ValueError: bad spec, a study directory holding another spec or other overrides,
            bad options or overrides.
        ImportError: ``executor="ray"`` without Ray installed (says what to install).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}; received {executor!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an integer >= 1; received {group_size!r}")
    study_spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    resources = dict(study_spec.resources)
    for key, value in (("cpus_per_trial", cpus_per_trial), ("gpus_per_trial", gpus_per_trial),
                       ("max_concurrent", max_concurrent), ("max_retries", max_retries)):
        if value is not None:
            resources[key] = value
    from disentkit.study.spec import check_resources

    check_resources(resources)
    runs = override_runs(expand(study_spec), overrides)
    selected = parse_model_nums(model_nums, len(runs))
    check_datasets(runs[n] for n in selected)
    study = init_study_dir(study_spec, out, overrides=overrides)
    # One driver per study directory; the processes of a job array (--model-num) share it.
    with hold_directory(study, what="study directory", shared=model_nums is not None):
        return _run_selected(study, study_spec, runs, selected, executor, resources,
                             progress, note, address, num_cpus, group_size)


def _run_selected(
    study: Path, study_spec: StudySpec, runs: list[RunSpec], selected: list[int],
    executor: str, resources: dict[str, Any], progress: bool,
    note: Callable[[str], None] | None, address: str | None, num_cpus: int | None,
    group_size: int = GROUP_SIZE,
) -> StudyOutcome:
    skipped = [n for n in selected if is_done(run_dir(study, n))]
    todo = [n for n in selected if n not in set(skipped)]
    reporter = StudyProgress(len(selected), len(skipped), enabled=progress,
                             label=f"study {study_spec.name}")
    say = note or reporter.note
    with reporter:
        if skipped:
            say(f"{len(skipped)} of {len(selected)} selected runs already done; not rerun")
        if todo and executor == "local":
            _run_local(study, todo, resources, reporter, say)
        elif todo and executor == "vectorized":
            _run_vectorized(study, runs, todo, resources, reporter, say, group_size)
        elif todo:
            _run_ray(study, study_spec, todo, resources, reporter, address=address,
                     num_cpus=num_cpus)
    frame = collect(study, runs=runs)
    write_results(study, frame)
    return StudyOutcome(study_dir=study, selected=tuple(selected), skipped=tuple(skipped),
                        ran=tuple(todo), results=frame)


def _run_local(study: Path, todo: list[int], resources: dict[str, Any],
               reporter: StudyProgress, say: Callable[[str], None]) -> None:
    retries = int(resources["max_retries"])
    for num in todo:
        reporter.started(num)
        for attempt in range(retries + 1):
            try:
                train_run(study, num)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                if attempt == retries:
                    say(f"run {num} failed after {attempt + 1} attempt(s): "
                        f"{type(exc).__name__}: {exc}")
                    reporter.failed(num)
                else:
                    say(f"run {num} failed ({type(exc).__name__}: {exc}); retrying")
                    reporter.retried(num)
                continue
            reporter.finished(num)
            break


def _run_vectorized(study: Path, runs: list[RunSpec], todo: list[int],
                    resources: dict[str, Any], reporter: StudyProgress,
                    say: Callable[[str], None], group_size: int) -> None:
    """Compatible runs in vectorised groups of up to ``group_size``; the rest as ``local``."""
    from disentkit.train.vectorized import group_key

    by_key: dict[str, list[int]] = {}
    alone: list[int] = []
    for num in todo:
        key = group_key(runs[num].config)
        (alone if key is None else by_key.setdefault(key, [])).append(num)
    for nums in by_key.values():
        for i in range(0, len(nums), group_size):
            group = nums[i:i + group_size]
            if len(group) == 1:
                alone.extend(group)
                continue
            for num in group:
                reporter.started(num)
            try:
                train_group(study, group)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                say(f"runs {group} did not finish as one vectorised model "
                    f"({type(exc).__name__}: {exc}); continuing them one by one")
                alone.extend(n for n in group if not is_done(run_dir(study, n)))
            for num in group:
                if is_done(run_dir(study, num)):
                    reporter.finished(num)
    if alone:
        _run_local(study, sorted(alone), resources, reporter, say)


def _run_ray(study: Path, spec: StudySpec, todo: list[int], resources: dict[str, Any],
             reporter: StudyProgress, *, address: str | None, num_cpus: int | None) -> None:
    try:
        import ray
        from ray import tune
    except ImportError as exc:
        raise ImportError(
            f"the 'ray' executor needs Ray Tune ({exc}); install it with "
            "pip install 'ray[tune]', or run with --executor local"
        ) from None
    import logging

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no Tune tables: our progress bar
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                "logging_level": logging.WARNING}
        if address:
            init["address"] = address
        elif num_cpus is not None:
            init["num_cpus"] = int(num_cpus)
        ray.init(**init)
    from disentkit.study import _ray

    key = f"{os.getpid()}-{id(reporter)}"
    _ray.REPORTERS[key] = reporter
    try:
        trainable = tune.with_resources(
            _ray.trainable,
            {"cpu": float(resources["cpus_per_trial"]),
             "gpu": float(resources["gpus_per_trial"])},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={
                "study_dir": str(study.resolve()),
                "cpus": resources["cpus_per_trial"],
                "model_num": tune.grid_search(list(todo)),
            },
            tune_config=tune.TuneConfig(
                max_concurrent_trials=resources["max_concurrent"],
                trial_name_creator=lambda t: f"run-{int(t.config['model_num']):05d}",
                trial_dirname_creator=lambda t: f"run-{int(t.config['model_num']):05d}",
            ),
            run_config=tune.RunConfig(
                name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
                storage_path=str(StudyDir(study).ray.resolve()),
                failure_config=tune.FailureConfig(max_failures=int(resources["max_retries"])),
                callbacks=[_ray.ProgressCallback(key)],
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        _ray.REPORTERS.pop(key, None)
        if started_here:
            ray.shutdown()
