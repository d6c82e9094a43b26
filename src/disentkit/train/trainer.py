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

import json
import os
import warnings
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._atomic import remove_stale_temporaries
from disentkit._lock import hold_directory
from disentkit._validation import DisentkitWarning
from disentkit.rundir import CHECKPOINT_PATH, CONFIG_NAME
from disentkit.train._loop import (
    EVAL_PREFIX,
    Progress,
    RunRecord,
    build_optimizer,
    clip_gradients,
    default_run_dir,
    drive,
    every_metrics,
    has_clipping,
    prepare_run_dir,
    save_run_model,
    training_module,
    uses_channels_last,
)
from disentkit.train.checkpoint import has_checkpoint, load_latest_checkpoint, save_checkpoint
from disentkit.train.config import EVERY_METRICS, RunConfig, build_config, resolve_config
from disentkit.train.trackers import check_trackers

__all__ = ["CHECKPOINT_PATH", "CONFIG_NAME", "EVAL_PREFIX", "EVERY_METRICS", "fit"]

_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}


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
        every_metrics(cfg)
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
                None if resume else default_run_dir(cfg))
            if target is not None:
                lock.enter_context(hold_directory(target, what="run directory"))
            chosen = prepare_run_dir(cfg, target, resume)
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


    rank, world = fabric.global_rank, fabric.world_size
    ckpt_path = path / CHECKPOINT_PATH
    torch.manual_seed(cfg.seed if rank == 0 else _rank_seed(cfg.seed, rank))
    model = build_model(cfg.model, **cfg.model_options)  # resolved: every option typed
    channels_last = uses_channels_last(cfg, fabric.device.type)
    if channels_last:  # the weights' layout; the values stay as initialised
        model.to(memory_format=torch.channels_last)
    extras = list(model.extra_steps())
    names = [e.name for e in extras]
    if len(set(names)) != len(names) or "main" in names:
        raise ValueError(f"extra steps need distinct names other than 'main'; received {names}")
    main_opt = build_optimizer(model.param_groups(), what=f"model {cfg.model!r}", lr=cfg.lr,
                                overrides=cfg.optimizer)
    extra_opts = []
    for e in extras:
        settings = dict(e.optimizer)
        if settings.get("name") in ("adam", "adamw", "sgd"):
            settings.setdefault("optimizer", settings.pop("name"))
        groups = ([{**settings, **g} for g in e.param_groups()] if e.param_groups is not None
                  else [{"params": list(e.parameters()), **settings}])
        extra_opts.append(build_optimizer(groups, what=f"extra step {e.name!r}"))
    module = training_module(model, extras)
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

    records = [RunRecord(cfg, path, start, dataset, model)] if fabric.is_global_zero else []
    loader = loader_cls(dataset, batch_size=cfg.batch_size, seed=cfg.seed, steps=cfg.steps,
                        start_step=start, sampling=cfg.sampling, num_workers=cfg.num_workers)
    per_rank = cfg.batch_size // world
    model.train()
    reporter = Progress(progress and fabric.is_global_zero, cfg.steps, start)
    if fallback_note:
        warnings.warn(fallback_note, DisentkitWarning, stacklevel=2)
        reporter.note(fallback_note)
    if start:
        reporter.note(f"resuming {path} at step {start} of {cfg.steps}")
    else:
        reporter.note(f"run directory {path}")
    extra_every = [max(int(e.every), 1) for e in extras]

    def step(t: int, batch: Any) -> dict[str, Any]:
        images, _factors = batch
        x = to_float(images[rank * per_rank:(rank + 1) * per_rank], fabric.device,
                     max_value=loader.max_value, channels_last=channels_last)
        terms = _take_step(module, fabric, main_opt, x, t, -1, "")
        for i, (e, opt) in enumerate(zip(extras, extra_opts, strict=True)):
            if t % extra_every[i] == 0:
                terms.update(_take_step(module, fabric, opt, x, t, i, f"{e.name}/"))
        return terms

    status = "failed"
    try:
        with reporter:
            drive(loader, step, cfg=cfg, start=start, members=1, records=records, save=save,
                  reporter=reporter, score_models=lambda: [model],
                  where=lambda i: str(path))
        status = "success"
    finally:
        for record in records:
            record.close(status)
    if fabric.is_global_zero:
        save_run_model(model, cfg, dataset, path)
    fabric.barrier()
    return path


def _take_step(
    module: Any, fabric: Any, optimizer: Any, x: Any, t: int, which: int, prefix: str,
) -> dict[str, Any]:
    """One optimiser step; its loss terms as scalar tensors on the device (no sync)."""
    import torch

    # the step's own parameters only: each optimiser clears what it will step, before its
    # backward (a module-wide zero_grad walks every submodule, ~1 ms a step on a CPU)
    optimizer.zero_grad(set_to_none=True)
    total, terms = module(x, t, which)
    fabric.backward(total)
    if has_clipping(optimizer.optimizer):
        fabric.strategy.precision.unscale_gradients(optimizer.optimizer)
        clip_gradients(optimizer.optimizer)
    optimizer.step()
    return {prefix + key: torch.as_tensor(value).detach().float().mean()
            for key, value in {"loss": total, **dict(terms)}.items()}
