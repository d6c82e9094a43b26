"""What the single and the vectorised trainer share: run directories, optimisers, the
loss bookkeeping, logging, evaluation during training, progress, and the step loop itself.

:func:`drive` is the one step loop. A trainer hands it the batches and a ``step`` function
that takes one training step and returns that step's loss terms as tensors — scalars for a
single run, ``(K,)`` for K vectorised members — and one :class:`RunRecord` per run
directory (its ``log/metrics.csv``, its trackers and its evaluation during training).
``drive`` keeps the per-key loss sums on the device (no synchronisation between log
steps), logs every ``log_every`` steps and at the end (means since the last log, and
``steps_per_second`` of the loop with the evaluation time left out), stops a run whose
loss is not finite, scores each run when its ``eval.every`` is due, and calls ``save`` every
``checkpoint_every`` steps and at the end.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from disentkit._atomic import atomic_write, write_json
from disentkit._validation import about_file
from disentkit.rundir import CONFIG_NAME, DEFAULT_RUNS_ROOT, METRICS_CSV, read_json
from disentkit.train.checkpoint import checkpoint_step, has_checkpoint
from disentkit.train.config import EVERY_METRICS, RunConfig
from disentkit.train.evaluate_run import (
    EvaluationSet,
    extract_representations,
    representation_options,
)
from disentkit.train.trackers import finish_trackers, open_trackers

__all__ = [
    "DEFAULT_LR",
    "EVAL_PREFIX",
    "RESUMABLE_CHANGES",
    "MetricsLog",
    "Progress",
    "RunRecord",
    "TrainingScores",
    "build_optimizer",
    "clip_gradients",
    "default_run_dir",
    "drive",
    "every_metrics",
    "has_clipping",
    "prepare_run_dir",
    "save_run_model",
    "training_module",
    "uses_channels_last",
]

DEFAULT_LR = 1e-3
#: prefix of the ``log/metrics.csv`` columns of scores during training
EVAL_PREFIX = "eval/"
# Fields that may change when a run is resumed; every other field must match config.json.
RESUMABLE_CHANGES = frozenset(
    {"steps", "checkpoint_every", "log_every", "eval", "loggers", "accelerator", "devices",
     "strategy", "num_workers", "deterministic", "memory_format"}
)


# --------------------------------------------------------------------------- configuration


def default_run_dir(config: RunConfig) -> Path:
    base = Path(DEFAULT_RUNS_ROOT) / f"{config.model}-{config.data}-seed{config.seed}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def config_differences(saved: RunConfig, new: RunConfig) -> list[str]:
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


def prepare_run_dir(config: RunConfig, run_dir: Path | None, resume: bool) -> Path:
    """Choose and check the run directory; write the resolved ``config.json``."""
    if run_dir is None:
        if resume:
            raise ValueError("resuming needs the run directory to continue (run_dir / --run-dir)")
        run_dir = default_run_dir(config)
    run_dir = Path(run_dir).expanduser()
    config_path = run_dir / CONFIG_NAME
    if resume and not config_path.is_file() and has_checkpoint(run_dir):
        raise ValueError(
            f"cannot resume {str(run_dir)!r}: it holds a checkpoint but no {CONFIG_NAME}"
        )
    if resume and config_path.is_file():
        with about_file(config_path):
            saved = RunConfig.from_dict(read_json(config_path))
        diffs = config_differences(saved, config)
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


def build_optimizer(
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


def clip_gradients(optimizer: Any) -> None:
    import torch

    for group in optimizer.param_groups:
        value = group.get("clip_value")
        if value is not None:
            torch.nn.utils.clip_grad_value_(group["params"], value)


def has_clipping(optimizer: Any) -> bool:
    return any(g.get("clip_value") is not None for g in optimizer.param_groups)


# --------------------------------------------------------------------------- scores


def every_metrics(cfg: RunConfig) -> list[str]:
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


class TrainingScores:
    """``eval.every``: the model's default representation scored every N steps."""

    def __init__(self, cfg: RunConfig, dataset: Any, model: Any) -> None:
        self.config = cfg.eval
        self.every = int(cfg.eval.every)
        self.metrics = every_metrics(cfg)
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


class MetricsLog:
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


class Progress:
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

    def __enter__(self) -> Progress:
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


def uses_channels_last(cfg: RunConfig, device_type: str) -> bool:
    """Whether a run trains with channels-last weights and images: ``memory_format``
    ``"channels_last"``, or ``"auto"`` on a CPU with an architecture that declares it
    faster so (:attr:`~disentkit.nn.Architecture.channels_last_on_cpu`).

    Example:
        >>> from disentkit.train.config import build_config
        >>> cfg = build_config({"model": "ae", "data": "d", "model_options": {"arch": "dlib"}},
        ...                    check_names=False)
        >>> uses_channels_last(cfg, "cpu"), uses_channels_last(cfg, "cuda")
        (True, False)
    """
    if cfg.memory_format != "auto":
        return cfg.memory_format == "channels_last"
    from disentkit.nn import ARCHITECTURES  # imports torch: only when training

    arch = cfg.model_options.get("arch")
    return (device_type == "cpu" and isinstance(arch, str) and arch in ARCHITECTURES
            and ARCHITECTURES[arch].channels_last_on_cpu)


def save_run_model(model: Any, cfg: RunConfig, dataset: Any, path: Path) -> None:
    """Write a finished run's ``model.safetensors`` + ``model.json``, recording the data,
    image shape ``[C, H, W]``, step and seed the run trained with."""
    from disentkit.models.saved import save_model  # imports torch: only when training

    h, w, c = dataset.image_shape
    save_model(model, path, info={
        "data": cfg.data,
        "data_options": cfg.data_options,
        "image_shape": [int(c), int(h), int(w)],
        "step": cfg.steps,
        "seed": cfg.seed,
    })


def training_module(model: Any, extras: Sequence[Any]) -> Any:
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


# --------------------------------------------------------------------------- the step loop


class RunRecord:
    """What one run directory receives while it trains: ``log/metrics.csv``, the
    configured trackers, and its evaluation during training (``eval.every``)."""

    def __init__(self, cfg: RunConfig, path: Path, start: int, dataset: Any, model: Any,
                 ) -> None:
        self.path = path
        self.csv = MetricsLog(path / METRICS_CSV, start)
        self.scorer = TrainingScores(cfg, dataset, model) if cfg.eval.every else None
        self.trackers = open_trackers(cfg, path, start_step=start)

    def scores_due(self, done: int) -> bool:
        return self.scorer is not None and self.scorer.due(done)

    def score(self, model: Any) -> dict[str, float]:
        assert self.scorer is not None
        return self.scorer(model)

    def log(self, done: int, values: Mapping[str, float]) -> None:
        self.csv.log(done, values)
        for tracker in self.trackers:
            tracker.log_metrics(dict(values), step=done)

    def close(self, status: str = "success") -> None:
        """Finish the trackers (``status``: ``"success"`` or ``"failed"``); a tracker's
        failure here is a warning: it must not lose the run."""
        finish_trackers(self.trackers, status)


class LossSums:
    """Per-key sums of the logged loss terms, kept on the device between log steps."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: Mapping[str, Any]) -> None:
        for key, value in terms.items():
            v = value.detach().float()
            self.sums[key] = self.sums[key] + v if key in self.sums else v
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self, members: int) -> list[dict[str, float]]:
        """Each member's mean of every key since the last call; the sums restart."""
        table = {k: (v / self.counts[k]).reshape(-1).tolist() for k, v in self.sums.items()}
        self.sums.clear()
        self.counts.clear()
        return [{k: float(v[i] if len(v) > 1 else v[0]) for k, v in table.items()}
                for i in range(members)]


def drive(
    batches: Iterable[Any],
    step: Callable[[int, Any], Mapping[str, Any]],
    *,
    cfg: RunConfig,
    start: int,
    members: int,
    records: Sequence[RunRecord],
    save: Callable[[int], None],
    reporter: Progress,
    score_models: Callable[[], Sequence[Any]] = lambda: (),
    where: Callable[[int], str] = lambda i: "the run",
) -> None:
    """The step loop shared by the trainers (see the module docstring).

    Args:
        batches: one item per step from ``start`` on, handed to ``step``.
        step: ``step(t, batch) -> {name: tensor}``, the loss terms of step ``t``, each a
            scalar or ``(members,)``.
        cfg: the run config (``steps``, ``log_every``, ``checkpoint_every``).
        start: the first step (a resumed run's checkpoint step).
        members: runs trained at once (1, or K vectorised members).
        records: one per member on the process that writes (none on other DDP processes).
        save: writes the checkpoints of step ``done``.
        reporter: the progress output.
        score_models: the members' models with current weights, when a score is due.
        where: names member ``i`` in the divergence message.

    Raises:
        ValueError: a logged loss is not finite (the last checkpoint is from before).
    """
    sums = LossSums()
    tick = time.perf_counter()
    last_logged = start
    saved_at = start if start else -1
    for t, batch in enumerate(batches, start=start):
        sums.add(step(t, batch))
        done = t + 1
        scores: list[dict[str, float]] = [{} for _ in records]
        if any(r.scores_due(done) for r in records):
            t0 = time.perf_counter()
            models = score_models()
            scores = [r.score(m) if r.scores_due(done) else {}
                      for r, m in zip(records, models, strict=True)]
            seconds = time.perf_counter() - t0
            tick += seconds  # steps_per_second counts training time only
            reporter.scored(done, scores[0], seconds)
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            rate = (done - last_logged) / max(now - tick, 1e-9)
            tick, last_logged = now, done
            rows = sums.means(members)
            for i, values in enumerate(rows):
                values["steps_per_second"] = rate
                if not all(math.isfinite(values[k]) for k in values if k.endswith("loss")):
                    raise ValueError(
                        f"training diverged: a loss of {where(i)} is not finite at step "
                        f"{done} ({values}); the last checkpoint is from before"
                    )
            for record, values, own in zip(records, rows, scores, strict=False):
                record.log(done, {**values, **own})
            reporter.logged(done, rows[0])
        else:
            for record, own in zip(records, scores, strict=True):
                if own:  # a row of its own
                    record.log(done, own)
            reporter.advance(done)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save(done)
            saved_at = done
    if saved_at != cfg.steps:
        save(cfg.steps)
