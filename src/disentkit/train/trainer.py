"""Train a registered model on a registered dataset: :func:`fit`.

How the loop is driven. Lightning **Fabric** handles the device (CPU, one GPU, several via
DDP), the mixed-precision context and gradient scaling, and process launching; disentkit
drives the loop itself, step by step. The Lightning ``Trainer`` is not used because an
exactly resumable run needs three things it does not give directly: batches chosen by the
step number (not by a data-loader position), the RNG states saved and restored at the
same point of the loop, and checkpoints written atomically (temporary file, then
``os.replace``). With Fabric these are a few lines each, and a run killed with ``kill -9``
and resumed ends with bit-identical weights to an uninterrupted run on the CPU (tested).

One iteration at step ``t`` (0-based):

1. batch ``t`` of the dataset, a pure function of ``(seed, t)``
   (:class:`~disentkit.data.torch.FactorBatchLoader`), converted on the device to float
   ``(B, C, H, W)`` in ``[0, 1]``; under DDP each process takes its slice of the batch;
2. main step: ``out = model(x)``, ``total, terms = model.loss(x, out, t)``, backward,
   element-wise gradient value clipping on the parameter groups that set ``clip_value``,
   optimiser step;
3. each of ``model.extra_steps()`` whose ``every`` divides ``t`` (so every extra step is
   taken at ``t = 0``), in the declared order, on the same batch: its loss, backward,
   clipping, its own optimiser's step.

Parameter groups. ``model.param_groups()`` returns torch-style groups; besides ``params``
the trainer reads ``optimizer`` (``"adam"``, ``"adamw"`` or ``"sgd"``), ``lr``, ``betas``,
``eps``, ``weight_decay``, ``momentum`` and ``clip_value``. ``"adam"`` and ``"adamw"``
groups share one ``DecoupledAdam`` (``train/_optim.py``: ``torch.optim.Adam`` whose
``"adamw"`` groups apply AdamW's decoupled decay ``w ← w − lr·λ·w`` themselves, so the
step does not depend on which torch release honours Adam's ``decoupled_weight_decay``
flag), and one gradient scaler step covers them all; ``"adam"`` groups with a
``weight_decay`` get Adam's coupled L2 (``λ·w`` added to the gradient). A group
without ``optimizer`` gets ``"adamw"`` (the same as Adam when its ``weight_decay`` is 0);
without ``lr``, 1e-3. Values set in the run config (``lr``, ``optimizer.*``) override
every main group; ``None`` keeps the model's choice. Extra steps use their
``ExtraStep.optimizer`` settings (same keys), or its ``param_groups`` when it declares
them, and ignore the run-level ones.

Evaluation during training (``eval.every = N > 0``). After the steps of ``t`` with
``(t + 1) % N == 0`` (never before the first step), the model's default representation
(``representation_kinds[0]``) is scored with ``eval.every_metrics`` (default
:data:`EVERY_METRICS`) in ``eval.every_mode`` (default fast) on ``eval.every_n_samples``
images, with ``eval.options`` per metric and ``eval.seed``. The evaluation set (factors and
images) is drawn once per run from ``eval.seed`` (:class:`~disentkit.train.evaluate_run.
EvaluationSet`), encoded by :func:`~disentkit.train.evaluate_run.extract_representations`
in eval mode (train mode restored after), with torch's RNG forked around the whole
evaluation: training's random stream is untouched, so a run ends with the same weights with
or without ``eval.every``. Scores go to ``log/metrics.csv`` as columns
``eval/<representation>/<score key>`` (``ScoreRow.key``: ``metric`` or ``metric.score``),
in the row of that step when losses are logged there too, else in a row of their own; to
every configured logger; and to the progress output. On process 0 only; ``steps_per_second``
leaves the evaluation time out. A resumed run drops the log rows after its checkpoint's
step and scores those steps again.

Randomness. ``torch.manual_seed(seed)`` before the model is built; batches depend on
``(seed, step)`` only. Checkpoints store the torch CPU and CUDA RNG states, the model,
the optimisers, the gradient scaler and the step; resuming restores all of them. Under
DDP each process ``r > 0`` is seeded from ``(seed, r)`` and, on resume, from
``(seed, r, step)`` (process 0's states are the ones stored).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._atomic import atomic_write, remove_stale_temporaries, write_json
from disentkit._lock import hold_directory
from disentkit._validation import DisentkitWarning, about_file
from disentkit.rundir import (
    CHECKPOINT_PATH,
    CONFIG_NAME,
    DEFAULT_RUNS_ROOT,
    METRICS_CSV,
    read_json,
)
from disentkit.train.checkpoint import (
    checkpoint_step,
    has_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
from disentkit.train.config import EVERY_METRICS, RunConfig, build_config, resolve_config
from disentkit.train.evaluate_run import (
    EvaluationSet,
    extract_representations,
    representation_options,
)
from disentkit.train.trackers import check_trackers, finish_trackers, open_trackers

__all__ = ["CHECKPOINT_PATH", "CONFIG_NAME", "EVAL_PREFIX", "EVERY_METRICS", "fit"]

DEFAULT_LR = 1e-3
#: metrics scored during training when ``eval.every_metrics`` is None
#: prefix of the ``log/metrics.csv`` columns of scores during training
EVAL_PREFIX = "eval/"
# Fields that may change when a run is resumed; every other field must match config.json.
RESUMABLE_CHANGES = frozenset(
    {"steps", "checkpoint_every", "log_every", "eval", "loggers", "accelerator", "devices",
     "strategy", "num_workers", "deterministic"}
)
_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}


# --------------------------------------------------------------------------- configuration


def _default_run_dir(config: RunConfig) -> Path:
    base = Path(DEFAULT_RUNS_ROOT) / f"{config.model}-{config.data}-seed{config.seed}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _config_differences(saved: RunConfig, new: RunConfig) -> list[str]:
    a, b = saved.to_dict(), new.to_dict()
    diffs = []
    for key in a:
        if key in RESUMABLE_CHANGES or a[key] == b.get(key):
            continue
        if isinstance(a[key], dict) and isinstance(b.get(key), dict):
            for sub in sorted(set(a[key]) | set(b[key])):
                if a[key].get(sub) != b[key].get(sub):
                    diffs.append(f"{key}.{sub}: {a[key].get(sub)!r} → {b[key].get(sub)!r}")
        else:
            diffs.append(f"{key}: {a[key]!r} → {b.get(key)!r}")
    return diffs


def _prepare_run_dir(config: RunConfig, run_dir: Path | None, resume: bool) -> Path:
    """Choose and check the run directory; write the resolved ``config.json``."""
    if run_dir is None:
        if resume:
            raise ValueError("resuming needs the run directory to continue (run_dir / --run-dir)")
        run_dir = _default_run_dir(config)
    run_dir = Path(run_dir).expanduser()
    config_path = run_dir / CONFIG_NAME
    if resume and not config_path.is_file() and has_checkpoint(run_dir):
        raise ValueError(
            f"cannot resume {str(run_dir)!r}: it holds a checkpoint but no {CONFIG_NAME}"
        )
    if resume and config_path.is_file():
        with about_file(config_path):
            saved = RunConfig.from_dict(read_json(config_path))
        diffs = _config_differences(saved, config)
        if diffs:
            raise ValueError(
                f"cannot resume {str(run_dir)!r} with a different configuration (its "
                f"{CONFIG_NAME} → this one: "
                + "; ".join(diffs)
                + f"); only {', '.join(sorted(RESUMABLE_CHANGES))} may change on resume"
            )
        if config.steps < checkpoint_step(run_dir):
            raise ValueError(
                f"cannot resume {str(run_dir)!r} with steps={config.steps}: its checkpoint "
                f"is at step {checkpoint_step(run_dir)} already"
            )
    elif config_path.exists() or has_checkpoint(run_dir):
        raise ValueError(
            f"run directory {str(run_dir)!r} already holds a run; continue it with --resume "
            "(resume=True) or choose another --run-dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config_path, config.to_dict())
    return run_dir


# --------------------------------------------------------------------------- optimisers


def _build_optimizer(
    groups: Sequence[Mapping[str, Any]],
    *,
    what: str,
    lr: float | None = None,
    overrides: Any = None,
) -> Any:
    """One torch optimiser for ``groups``; ``clip_value`` stays in each group's dict."""
    import torch

    settings = {} if overrides is None else {
        k: v for k, v in dataclasses.asdict(overrides).items() if v is not None
    }
    family_override = settings.pop("name", None)
    built: list[dict[str, Any]] = []
    families = set()
    for i, group in enumerate(groups):
        g = dict(group)
        params = [p for p in g.pop("params") if p.requires_grad]
        if not params:
            continue
        family = g.pop("optimizer", None) or "adamw"
        family = family_override or family
        if family not in ("adam", "adamw", "sgd"):
            raise ValueError(
                f"{what}: parameter group {i} asks for optimizer {family!r}; supported: "
                "'adam', 'adamw', 'sgd'"
            )
        families.add("sgd" if family == "sgd" else "adam")
        g.update(settings)
        g["lr"] = float(lr if lr is not None else g.get("lr", DEFAULT_LR))
        g["weight_decay"] = float(g.get("weight_decay", 0.0) or 0.0)
        if g.get("clip_value") is not None:
            g["clip_value"] = float(g["clip_value"])
        if family == "sgd":
            g.pop("betas", None)
            g.pop("eps", None)
            g["momentum"] = float(g.get("momentum", 0.0) or 0.0)
        else:
            g.pop("momentum", None)
            g["betas"] = tuple(float(b) for b in g.get("betas", (0.9, 0.999)))
            g["eps"] = float(g.get("eps", 1e-8))
            g["decoupled_weight_decay"] = family == "adamw"
        g["optimizer"] = family
        built.append({"params": params, **g})
    if not built:
        raise ValueError(f"{what}: no trainable parameters")
    if len(families) > 1:
        raise ValueError(
            f"{what}: parameter groups mix SGD with Adam/AdamW; one step needs one family"
        )
    if families == {"sgd"}:
        return torch.optim.SGD(built)
    from disentkit.train._optim import DecoupledAdam  # imports torch: only when training

    return DecoupledAdam(built)


def _clip(optimizer: Any) -> None:
    import torch

    for group in optimizer.param_groups:
        value = group.get("clip_value")
        if value is not None:
            torch.nn.utils.clip_grad_value_(group["params"], value)


def _has_clipping(optimizer: Any) -> bool:
    return any(g.get("clip_value") is not None for g in optimizer.param_groups)


# --------------------------------------------------------------------------- scores


def _every_metrics(cfg: RunConfig) -> list[str]:
    """The metrics scored during training, checked (``ValueError`` with a hint)."""
    from disentkit.metrics import METRICS

    e = cfg.eval
    if isinstance(e.every, bool) or e.every < 0:
        raise ValueError(f"config field 'eval.every' must be an integer ≥ 0 (0: off); "
                         f"received {e.every!r}")
    if e.every_n_samples < 2:
        raise ValueError(f"config field 'eval.every_n_samples' must be an integer ≥ 2; "
                         f"received {e.every_n_samples!r}")
    names = list(EVERY_METRICS) if e.every_metrics is None else list(
        dict.fromkeys(e.every_metrics))
    if not names:
        raise ValueError("config field 'eval.every_metrics' must name at least one metric or "
                         f"be null (the default: {list(EVERY_METRICS)})")
    sampling = [n for n in names if METRICS[n].kind != "array"]  # unknown names raise
    if sampling:
        raise ValueError(
            f"config field 'eval.every_metrics' takes metrics that score an array of "
            f"latents; received {sampling}, which draw their own observations (score them "
            "at the end with eval.metrics)"
        )
    for name in e.options:
        METRICS[name]  # unknown names raise, listing the known ones
    return names


class _TrainingScores:
    """``eval.every``: the model's default representation scored every N steps."""

    def __init__(self, cfg: RunConfig, dataset: Any, model: Any) -> None:
        self.config = cfg.eval
        self.every = int(cfg.eval.every)
        self.metrics = _every_metrics(cfg)
        self.kind = model.representation_kinds[0]
        self.dataset = dataset
        self._set: Any = None

    def due(self, done: int) -> bool:
        return self.every > 0 and done % self.every == 0

    def __call__(self, model: Any) -> dict[str, float]:
        """``{"eval/<kind>/<score key>": value}`` of the current weights."""
        import torch

        from disentkit.metrics import evaluate

        e = self.config
        if self._set is None:  # drawn once per run, the same after a resume
            self._set = EvaluationSet.sample(self.dataset, int(e.every_n_samples), int(e.seed),
                                             render=True)
        dev = next(model.parameters()).device
        was_training = model.training
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            model.eval()
            try:
                latents = extract_representations(
                    model, self._set, [self.kind], batch_size=int(e.batch_size),
                    seed=int(e.seed))[self.kind]  # (n, D)
            finally:
                model.train(was_training)
            ev = evaluate(latents, self._set.factors, metrics=self.metrics,
                          mode=e.every_mode, seed=int(e.seed),
                          options=representation_options(self.kind, self.metrics, e.options))
        return {f"{EVAL_PREFIX}{self.kind}/{row.key}": float(row.value) for row in ev.rows()}


# --------------------------------------------------------------------------- logging


class _CSVLog:
    """``log/metrics.csv``: one row per logged step, flushed at once; on resume the rows
    after the checkpoint's step are dropped (they will be logged again)."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        self.fields: list[str] = ["step"]
        self.rows: list[dict[str, str]] = []
        if path.is_file() and start_step > 0:
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or ["step"])
                for row in reader:
                    with suppress(TypeError, ValueError):
                        if int(row["step"]) <= start_step:
                            self.rows.append(row)
        self._rewrite()

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        text = buf.getvalue()
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def log(self, step: int, values: Mapping[str, float]) -> None:
        row = {"step": str(step), **{k: repr(float(v)) for k, v in values.items()}}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new:
            self.fields += new
            self._rewrite()
            return
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, lineterminator="\n").writerow(row)


class _Progress:
    """A rich progress bar on a terminal; elsewhere one line per logged step."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled
        self.total = total
        self.live = enabled and self.console.is_terminal
        self._bar: Any = None
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[loss]}"),
                console=self.console,
            )
            self._task = self._bar.add_task("", total=total, completed=start, loss="")

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def logged(self, done: int, values: Mapping[str, float]) -> None:
        loss = values.get("loss")
        text = "" if loss is None else f"loss {loss:.4g}"
        if self._bar is not None:
            self._bar.update(self._task, completed=done, loss=text)
        elif self.enabled:
            self.console.print(f"step {done}/{self.total} {text}".rstrip(), soft_wrap=True)

    def scored(self, done: int, scores: Mapping[str, float], seconds: float) -> None:
        text = ", ".join(f"{k.removeprefix(EVAL_PREFIX)} {v:.3f}" for k, v in scores.items())
        message = f"step {done}/{self.total} scores: {text} ({seconds:.1f} s)"
        if self.enabled:
            self.console.print(message, soft_wrap=True)

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, style="dim", soft_wrap=True)


# --------------------------------------------------------------------------- the loop


def _training_module(model: Any, extras: Sequence[Any]) -> Any:
    """An ``nn.Module`` whose forward computes one step's loss (so DDP sees every pass)."""
    from torch import nn

    class _Steps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Any, step: int, which: int = -1) -> tuple[Any, dict[str, Any]]:
            if which < 0:
                out = self.model(x)
                return self.model.loss(x, out, step)
            return extras[which].loss(x, step)

    return _Steps()


def _rank_seed(seed: int, rank: int, step: int | None = None) -> int:
    words = [seed, rank] if step is None else [seed, rank, step]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


def _rng_state() -> dict[str, Any]:
    import torch

    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def fit(
    config: RunConfig | Mapping[str, Any] | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train a model as ``config`` says and write its run directory.

    Args:
        config: a :class:`RunConfig`, a mapping :meth:`RunConfig.from_dict` reads, or a
            YAML/JSON file.
        run_dir: where to write the run; default ``runs/<model>-<data>-seed<seed>`` (with
            ``-2``, ``-3``, ... when taken).
        resume: continue the run in ``run_dir`` from ``checkpoints/last.ckpt`` (a run
            killed before its first checkpoint restarts from step 0; a directory without
            a run starts one, so "train or continue" is one call). ``config`` must match
            the run's ``config.json`` except for ``steps`` (may grow), logging,
            checkpointing, evaluation and device settings. Resuming a finished run
            rewrites its model files and returns.
        progress: show a progress bar (a line per logged step when not on a terminal).

    Returns:
        the run directory, holding ``config.json``, ``checkpoints/last.ckpt``,
        ``log/metrics.csv``, ``model.safetensors`` and ``model.json``.

    Raises:
        ValueError: bad config, unknown model/dataset options, a run directory that
            already holds a run (without ``resume``), a resume with a changed config, a
            missing logger package, or a loss that became NaN/inf.
    """
    cfg = build_config(config)  # validated once; a validated RunConfig passes as it is
    check_trackers(cfg.loggers)
    if cfg.eval.every:
        _every_metrics(cfg)
    import torch
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    from disentkit.data import get_dataset
    from disentkit.data.torch import FactorBatchLoader, to_float
    from disentkit.models import MODELS, Model, build_model

    strategy: Any = cfg.strategy
    if strategy == "ddp" and MODELS[cfg.model].cls.extra_steps is not Model.extra_steps:
        # An extra step's forward leaves the main parameters without gradients.
        strategy = DDPStrategy(find_unused_parameters=True)
    fabric = Fabric(accelerator=cfg.accelerator, devices=cfg.devices, strategy=strategy,
                    precision=_PRECISION[cfg.precision])  # type: ignore[arg-type]
    fabric.launch()
    world = fabric.world_size
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of "
                         f"processes ({world})")

    dataset = get_dataset(cfg.data, **cfg.data_options)
    cfg = resolve_config(cfg, dataset)
    with ExitStack() as lock:
        chosen = None
        if fabric.is_global_zero:
            # One writer per run directory: a second process resuming it is refused at once,
            # naming the holder; the OS releases the lock if this process is killed.
            target = Path(run_dir).expanduser() if run_dir is not None else (
                None if resume else _default_run_dir(cfg))
            if target is not None:
                lock.enter_context(hold_directory(target, what="run directory"))
            chosen = _prepare_run_dir(cfg, target, resume)
        path = Path(fabric.broadcast(str(chosen) if chosen is not None else None, src=0))
        fabric.barrier()
        ckpt_path = path / CHECKPOINT_PATH
        if fabric.is_global_zero:
            remove_stale_temporaries(ckpt_path.parent)
            remove_stale_temporaries(path)

        previous_deterministic = torch.are_deterministic_algorithms_enabled()
        previous_benchmark = torch.backends.cudnn.benchmark
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        try:
            return _train(cfg, path, fabric, dataset, resume, progress, build_model,
                          FactorBatchLoader, to_float)
        finally:
            torch.use_deterministic_algorithms(previous_deterministic)
            torch.backends.cudnn.benchmark = previous_benchmark


def _train(
    cfg: RunConfig,
    path: Path,
    fabric: Any,
    dataset: Any,
    resume: bool,
    progress: bool,
    build_model: Any,
    loader_cls: Any,
    to_float: Any,
) -> Path:
    import torch

    from disentkit.models.saved import save_model

    rank, world = fabric.global_rank, fabric.world_size
    ckpt_path = path / CHECKPOINT_PATH
    torch.manual_seed(cfg.seed if rank == 0 else _rank_seed(cfg.seed, rank))
    model = build_model(cfg.model, **cfg.model_options)  # resolved: every option typed
    extras = list(model.extra_steps())
    names = [e.name for e in extras]
    if len(set(names)) != len(names) or "main" in names:
        raise ValueError(f"extra steps need distinct names other than 'main'; received {names}")
    main_opt = _build_optimizer(model.param_groups(), what=f"model {cfg.model!r}", lr=cfg.lr,
                                overrides=cfg.optimizer)
    extra_opts = []
    for e in extras:
        settings = dict(e.optimizer)
        if settings.get("name") in ("adam", "adamw", "sgd"):
            settings.setdefault("optimizer", settings.pop("name"))
        groups = ([{**settings, **g} for g in e.param_groups()] if e.param_groups is not None
                  else [{"params": list(e.parameters()), **settings}])
        extra_opts.append(_build_optimizer(groups, what=f"extra step {e.name!r}"))
    module = _training_module(model, extras)
    module, main_opt, *extra_opts = fabric.setup(module, main_opt, *extra_opts)
    raw_opts = {"main": main_opt.optimizer,
                **{e.name: o.optimizer for e, o in zip(extras, extra_opts, strict=True)}}
    precision = fabric.strategy.precision

    start = 0
    fallback_note = ""
    if resume and has_checkpoint(path):
        state, read_from, problems = load_latest_checkpoint(ckpt_path)
        if problems:
            fallback_note = (f"{'; '.join(problems)}: resuming from {read_from.name} "
                             f"(step {int(state['step'])}) instead")
        model.load_state_dict(state["model"])
        for name, opt in raw_opts.items():
            opt.load_state_dict(state["optimizers"][name])
        precision.load_state_dict(state.get("precision") or {})
        start = int(state["step"])
        if rank == 0:
            _set_rng_state(state["rng"])
        else:
            torch.manual_seed(_rank_seed(cfg.seed, rank, start))

    def save(done: int) -> None:
        if fabric.is_global_zero:
            save_checkpoint(ckpt_path, {
                "step": done,
                "model": model.state_dict(),
                "optimizers": {n: o.state_dict() for n, o in raw_opts.items()},
                "precision": precision.state_dict(),
                "rng": _rng_state(),
                "config": json.dumps(cfg.to_dict()),
            })
        fabric.barrier()

    csv_log = _CSVLog(path / METRICS_CSV, start) if fabric.is_global_zero else None
    scorer = (_TrainingScores(cfg, dataset, model)
              if cfg.eval.every and fabric.is_global_zero else None)
    loggers = open_trackers(cfg, path, start_step=start) if fabric.is_global_zero else []
    loader = loader_cls(dataset, batch_size=cfg.batch_size, seed=cfg.seed, steps=cfg.steps,
                        start_step=start, sampling=cfg.sampling, num_workers=cfg.num_workers)
    per_rank = cfg.batch_size // world
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}
    tick = time.perf_counter()
    last_logged = start
    saved_at = start if start else -1
    model.train()
    reporter = _Progress(progress and fabric.is_global_zero, cfg.steps, start)
    if fallback_note:
        warnings.warn(fallback_note, DisentkitWarning, stacklevel=2)
        reporter.note(fallback_note)
    if start:
        reporter.note(f"resuming {path} at step {start} of {cfg.steps}")
    else:
        reporter.note(f"run directory {path}")
    with reporter:
        for t, (images, _factors) in enumerate(loader, start=start):
            x = to_float(images[rank * per_rank:(rank + 1) * per_rank], fabric.device,
                         max_value=loader.max_value)
            _take_step(module, fabric, main_opt, x, t, -1, "", sums, counts)
            for i, (e, opt) in enumerate(zip(extras, extra_opts, strict=True)):
                if t % max(int(e.every), 1) == 0:
                    _take_step(module, fabric, opt, x, t, i, f"{e.name}/", sums, counts)
            done = t + 1
            scores: dict[str, float] = {}
            if scorer is not None and scorer.due(done):
                t0 = time.perf_counter()
                scores = scorer(model)
                seconds = time.perf_counter() - t0
                tick += seconds  # steps_per_second counts training time only
                reporter.scored(done, scores, seconds)
            if done % cfg.log_every == 0 or done == cfg.steps:
                values = {k: float(v.item()) / counts[k] for k, v in sums.items()}
                now = time.perf_counter()
                values["steps_per_second"] = (done - last_logged) / max(now - tick, 1e-9)
                tick, last_logged = now, done
                sums.clear()
                counts.clear()
                if not all(math.isfinite(values[k]) for k in values if k.endswith("loss")):
                    raise ValueError(
                        f"training diverged: a loss is not finite at step {done} ({values}); "
                        f"the last checkpoint in {path} is from before"
                    )
                values.update(scores)
                if csv_log is not None:
                    csv_log.log(done, values)
                for logger in loggers:
                    logger.log_metrics(values, step=done)
                reporter.logged(done, values)
            else:
                if scores:  # a row of its own
                    if csv_log is not None:
                        csv_log.log(done, scores)
                    for logger in loggers:
                        logger.log_metrics(scores, step=done)
                reporter.advance(done)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                save(done)
                saved_at = done
    if saved_at != cfg.steps:
        save(cfg.steps)
    finish_trackers(loggers)
    if fabric.is_global_zero:
        h, w, c = dataset.image_shape
        save_model(model, path, info={
            "data": cfg.data,
            "data_options": cfg.data_options,
            "image_shape": [int(c), int(h), int(w)],
            "step": cfg.steps,
            "seed": cfg.seed,
        })
    fabric.barrier()
    return path


def _take_step(
    module: Any, fabric: Any, optimizer: Any, x: Any, t: int, which: int, prefix: str,
    sums: dict[str, Any], counts: dict[str, int],
) -> None:
    import torch

    module.zero_grad(set_to_none=True)
    total, terms = module(x, t, which)
    fabric.backward(total)
    if _has_clipping(optimizer.optimizer):
        fabric.strategy.precision.unscale_gradients(optimizer.optimizer)
        _clip(optimizer.optimizer)
    optimizer.step()
    logged = {"loss": total, **dict(terms)}
    for key, value in logged.items():
        name = prefix + key
        v = torch.as_tensor(value).detach().float().mean()  # stays on the device: no sync
        sums[name] = sums[name] + v if name in sums else v
        counts[name] = counts.get(name, 0) + 1
