"""Train K runs as one vectorised model: :func:`fit_vectorized`.

K run configs of the same model, dataset, architecture and shapes that differ in ``seed`` —
and, where the model allows, in ``lr``, ``optimizer.weight_decay`` and the model options it
lists in ``vectorized_options`` (loss weights such as ``beta``, the model's
``weight_decay``) — train as one model whose parameters are stacked along a leading K axis.
One iteration at step ``t``:

1. each member's batch ``t`` from its own :class:`~disentkit.data.torch.FactorBatchLoader`
   (``seed=cfg_k.seed``; a pure function of ``(seed_k, t)``), stacked to ``(K, B, C, H, W)``;
2. each member's gradient of the single trainer's step loss (``model(x)`` then
   ``model.loss(x, out, t)``), by one of two strategies:

   - ``"vmap"`` (the default on a GPU, where K small models otherwise wait on K kernel
     launches per operation): ``torch.func.vmap`` over the members of ``torch.func.grad``
     through ``functional_call``, one batched computation;
   - ``"loop"`` (the default on a CPU, where vmap's grouped convolutions are slower than
     separate ones and copy activations): member after member, plain autograd on the
     member's own model, whose parameters are views of its slice of the stacked tensors (laid
     out as its single run's, e.g. channels-last) and whose gradients accumulate into its
     slice of one stacked buffer; one member's activations at a time;
   - ``"threads"`` (CPU, opt-in): the loop's members side by side on one worker thread per
     intra-op thread of the process (``torch.get_num_threads()``), each worker running its
     members' operations, and a share of the update, on one core; for CPUs with more cores
     than a small model's operations split over well. On 2 cores it measured no faster than
     the loop (``benchmarks/train.py --part vectorized --strategies threads loop``). One
     member's activations per worker;
3. element-wise gradient value clipping per parameter group, as the single trainer does;
4. one Adam/AdamW update of every stacked parameter, written out with the same arithmetic
   as ``torch.optim.Adam``'s single-tensor CPU path; a hyper-parameter that differs between
   members (learning rate, weight decay) is a per-member tensor.

Randomness. Member ``k`` is built right after ``torch.manual_seed(seed_k)``, as its single run
builds it; then its own ``torch.Generator`` takes over the global RNG's state, and the
model's training noise (:meth:`~disentkit.models.Model.noise`) is drawn from it, member by
member, in the order the single run draws it (:func:`~disentkit.models.noise_source`). So a
member sees the batches, initial weights and noise of the single run with its config.

Equality with single runs. On the CPU, with ``"loop"``, a member's final weights equal the
single run's **bit for bit** (same kernels, same layout, and the update below; tested for
every vectorisable model) where its learning rate and weight decay are the other members';
with ``"threads"`` up to float rounding: a kernel on one thread may sum a reduction (the
gradient of a convolution's weights) in another order than on several, an ulp or so;
with ``"vmap"`` up to float rounding: vmap batches the convolutions and matrix products
differently, an ulp or so per operation; the tests bound the largest absolute difference
after a few steps by 2e-5 (one Adam step moves a weight by up to ``lr``, 1e-3). Where lr and
weight decay are the same for every member, the update uses the single run's scalar
arithmetic exactly; otherwise per-member tensors may round an ulp differently.

The step loop itself — loss bookkeeping, logging, evaluation during training (``eval.every``,
each member scored on its own evaluation set with its current weights), checkpoints — is the
single trainer's (:func:`disentkit.train._loop.drive`), with one record per member.

Run directories. Each member is an ordinary run directory, indistinguishable from a single
run's: ``config.json`` (its own seed and options), ``log/metrics.csv`` (losses and
``eval.every`` scores), single-run
checkpoints ``checkpoints/last.ckpt`` (so :func:`~disentkit.train.fit` can resume one member
alone, and a vectorised run can resume members started singly), ``model.safetensors`` and
``model.json``. Resuming a vectorised run restarts every member from the newest step all of
them have a checkpoint for (a member killed mid-way through the checkpoint round is ahead
by one checkpoint and restarts from its ``previous.ckpt``), so a SIGKILL at any moment
resumes exactly.

Refusals. Models whose class sets ``vectorize_refusal`` (extra optimiser steps, in-place
buffer updates, noise outside ``Model.noise``), configs that differ elsewhere, SGD, mixed
precision and several devices are refused with a :class:`ValueError` naming the reason;
:func:`vectorize_problem` says it without training.

Entry points: :func:`train_members` (what ``disentkit train --seeds 0-7`` / ``--set-list``
calls), :func:`parse_seeds`, :func:`expand_configs`, :func:`member_run_dirs`, and the study
executor ``"vectorized"`` (:func:`disentkit.study.runner.run_study`), which groups
compatible runs with :func:`group_key`.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from disentkit._atomic import remove_stale_temporaries
from disentkit._lock import hold_directory
from disentkit._validation import DisentkitWarning
from disentkit.rundir import CHECKPOINT_PATH, CONFIG_NAME, read_json
from disentkit.train._loop import (
    Progress,
    RunRecord,
    build_optimizer,
    drive,
    prepare_run_dir,
    save_run_model,
    training_module,
    uses_channels_last,
)
from disentkit.train.checkpoint import (
    load_checkpoint,
    load_latest_checkpoint,
    previous_checkpoint,
    save_checkpoint,
)
from disentkit.train.config import (
    RunConfig,
    build_config,
    coerce_options,
    parse_overrides,
    resolve_config,
)
from disentkit.train.trackers import check_trackers

__all__ = [
    "MEMBER_FIELDS",
    "STRATEGIES",
    "expand_configs",
    "fit_vectorized",
    "group_key",
    "member_run_dirs",
    "parse_seeds",
    "parse_set_list",
    "train_members",
    "vectorize_problem",
]

#: run-config fields that may differ between members (besides the model's
#: ``vectorized_options``); ``eval`` and ``loggers`` only act outside the training step
MEMBER_FIELDS = ("seed", "lr", "optimizer.weight_decay", "eval", "loggers")
#: how :func:`fit_vectorized` takes the members' gradients
STRATEGIES = ("auto", "vmap", "loop", "threads")
_SEEDS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


# --------------------------------------------------------------------------- building configs


def parse_seeds(text: str | int | Iterable[int]) -> list[int]:
    """Seeds from ``"0-7"`` (inclusive range), ``"0,3,5"``, ``"0-3,8"`` or integers.

    Example:
        >>> parse_seeds("0-3,8")
        [0, 1, 2, 3, 8]
        >>> parse_seeds("5")
        [5]
    """
    if isinstance(text, int) and not isinstance(text, bool):
        items: list[int] = [text]
    elif isinstance(text, str):
        items = []
        for part in text.split(","):
            match = _SEEDS.match(part)
            if not match:
                raise ValueError(
                    f"seeds must be a list like '0-7', '0,3,5' or '0-3,8'; received {text!r}"
                )
            low, high = int(match[1]), int(match[2] if match[2] is not None else match[1])
            if high < low:
                raise ValueError(f"seed range must go upwards ('3-7'); received {part.strip()!r}")
            items.extend(range(low, high + 1))
    else:
        items = [int(s) for s in text]
    if not items:
        raise ValueError(f"seeds must name at least one seed; received {text!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"seeds must be distinct; received {items}")
    return items


def parse_set_list(items: Iterable[str]) -> list[tuple[str, list[Any]]]:
    """``KEY=V1,V2,...`` items (dotted keys as ``--set``) → ``[(key, [v1, v2, ...])]``.

    Values stay text, converted to the field's type as ``--set`` values are.

    Example:
        >>> parse_set_list(["model.beta=1,4,8", "lr=1e-3,3e-4"])
        [('model.beta', ['1', '4', '8']), ('lr', ['1e-3', '3e-4'])]
    """
    out: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, values = str(item).partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(
                f"a hyper-parameter list must read KEY=V1,V2,... (e.g. model.beta=1,4,8); "
                f"received {item!r}"
            )
        parsed = [v for _, v in parse_overrides([f"{key.strip()}={v.strip()}"
                                                 for v in values.split(",")])]
        out.append((key.strip(), parsed))
    return out


def expand_configs(
    config: RunConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    seeds: str | Iterable[int] | None = None,
    set_lists: Iterable[str] | Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[RunConfig]:
    """The member configs: ``config`` for every combination of the seeds and value lists.

    Args:
        config: the base run config.
        seeds: seeds (:func:`parse_seeds`); default: the base config's seed alone.
        set_lists: ``"KEY=V1,V2"`` strings (:func:`parse_set_list`) or ``(key, values)``
            pairs; members are the Cartesian product, seeds varying fastest, then the
            last list's values.

    Example:
        >>> cfgs = expand_configs({"model": "beta_vae", "data": "xyobject_tiny"}, seeds="0-1",
        ...                       set_lists=["model.beta=1,4"])
        >>> [(c.seed, float(c.model_options["beta"])) for c in cfgs]
        [(0, 1.0), (1, 1.0), (0, 4.0), (1, 4.0)]
    """
    base = build_config(config)
    pairs = [p if isinstance(p, tuple) else parse_set_list([p])[0] for p in set_lists]
    seed_list = parse_seeds(seeds) if seeds is not None else [base.seed]
    configs = []
    for values in itertools.product(*[v for _, v in pairs]):
        overrides = {k: v for (k, _), v in zip(pairs, values, strict=True)}
        for seed in seed_list:
            configs.append(RunConfig.from_dict(base.to_dict(), {**overrides, "seed": seed}))
    return configs


def _varying(configs: Sequence[RunConfig]) -> list[str]:
    """Dotted names of the fields whose values differ between ``configs`` (seed first)."""
    flat = [_flat(c.to_dict()) for c in configs]
    keys = sorted({k for f in flat for k in f}, key=lambda k: (k != "seed", k))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def member_run_dirs(
    configs: Sequence[RunConfig], run_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Run directories of the members: ``RUN_DIR/<name>`` or ``runs/<model>-<data>-<name>``.

    ``<name>`` is ``seed<k>`` followed by ``-<field><value>`` for each other field that
    differs between the members (``seed0-beta4``). Without ``run_dir`` a taken name gets
    ``-2``, ``-3``, ... as single runs do.

    Example:
        >>> cfgs = expand_configs({"model": "qlae", "data": "xyobject_tiny"}, seeds="0,5")
        >>> [str(p) for p in member_run_dirs(cfgs, "sweep")]
        ['sweep/seed0', 'sweep/seed5']
    """
    varying = [k for k in _varying(configs) if k != "seed"]
    names = []
    for cfg in configs:
        flat = _flat(cfg.to_dict())
        name = f"seed{cfg.seed}" + "".join(
            f"-{k.rsplit('.', 1)[-1]}{flat.get(k)}" for k in varying)
        names.append(re.sub(r"[^A-Za-z0-9_.+-]", "_", name))
    if len(set(names)) != len(names):
        raise ValueError(f"members must differ in their configs; received duplicates among "
                         f"{names}")
    if run_dir is not None:
        root = Path(run_dir).expanduser()
        return [root / n for n in names]
    out = []
    for cfg, name in zip(configs, names, strict=True):
        base = Path("runs") / f"{cfg.model}-{cfg.data}-{name}"
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
        out.append(candidate)
    return out


# --------------------------------------------------------------------------- compatibility


def _model_cls(name: str) -> Any:
    from disentkit.models import MODELS

    return MODELS[name].cls


def group_key(config: RunConfig | Mapping[str, Any]) -> str | None:
    """A key equal for configs that can train as members of one vectorised run.

    ``None`` when the model class refuses vectorised training. Configs with equal keys may
    still be refused by :func:`vectorize_problem` after their model options are resolved
    (e.g. a weight decay of 0 in one and not the other changes the parameter groups).
    """
    cfg = build_config(config)
    cls = _model_cls(cfg.model)
    if cls.vectorize_refusal is not None:
        return None
    tree = cfg.to_dict()
    for key in MEMBER_FIELDS:
        head, _, tail = key.partition(".")
        if tail:
            tree.get(head, {}).pop(tail, None)
        else:
            tree.pop(head, None)
    for key in cls.vectorized_options:
        tree["model_options"].pop(key, None)
    return json.dumps(tree, sort_keys=True, default=str)


def vectorize_problem(configs: Sequence[RunConfig | Mapping[str, Any]]) -> str | None:
    """Why ``configs`` cannot train as one vectorised run (``None``: they can).

    Checks the model class's declaration (:attr:`~disentkit.models.Model.vectorize_refusal`,
    per config), that the configs differ only in :data:`MEMBER_FIELDS` and the model's
    ``vectorized_options``, full precision and one device. Model options are compared as
    given; :func:`fit_vectorized` checks the resolved ones and the parameter groups too.
    """
    cfgs = [build_config(c) for c in configs]
    if not cfgs:
        return "there are no runs to train"
    first = cfgs[0]
    cls = _model_cls(first.model)
    for cfg in cfgs:
        if cfg.precision != "32":
            return ("vectorised training runs in full precision; received "
                    f"precision={cfg.precision!r}")
        if cfg.devices not in (1, "auto") or cfg.strategy not in ("auto",):
            return (f"vectorised training runs on one device; received devices={cfg.devices!r}, "
                    f"strategy={cfg.strategy!r}")
        if cfg.optimizer.name == "sgd":
            return "vectorised training supports Adam and AdamW; received optimizer.name='sgd'"
    keys = {group_key(c) for c in cfgs}
    if None in keys:
        return f"model {first.model!r} cannot train vectorised: {cls.vectorize_refusal}"
    if len(keys) > 1:
        allowed = [*MEMBER_FIELDS, *(f"model_options.{o}" for o in cls.vectorized_options)]
        others = [k for k in _varying(cfgs) if k not in allowed
                  and not any(k.startswith(a + ".") for a in allowed)]
        return (f"members may differ only in {', '.join(allowed)}; these differ: "
                f"{', '.join(others) or '(model options given in some members only)'}")
    return None


# --------------------------------------------------------------------------- the optimiser


@dataclasses.dataclass
class _Group:
    """One parameter group of every member: names, and per-member hyper-parameters."""

    names: list[str]
    lr: list[float]
    weight_decay: list[float]
    decoupled: bool
    betas: tuple[float, float]
    eps: float
    clip_value: float | None


def _groups(models: Sequence[Any], opts: Sequence[Any], what: str) -> list[_Group]:
    """The members' optimiser groups, checked to have the same structure."""
    per_member = []
    for model, opt in zip(models, opts, strict=True):
        names = {id(p): n for n, p in model.named_parameters()}
        per_member.append([([names[id(p)] for p in g["params"]], g) for g in opt.param_groups])
    groups = []
    for i, (names, g0) in enumerate(per_member[0]):
        rows = [m[i] if i < len(m) else (None, None) for m in per_member]
        if any(len(m) != len(per_member[0]) for m in per_member) or any(
                r[0] != names for r in rows):
            raise ValueError(f"{what}: the members' parameter groups differ (e.g. a weight "
                             "decay of 0 in some members only); they cannot train vectorised")
        for key in ("optimizer", "betas", "eps", "clip_value", "decoupled_weight_decay"):
            if any(r[1].get(key) != g0.get(key) for r in rows):
                raise ValueError(f"{what}: members differ in {key} of parameter group {i}; "
                                 "only lr and weight decay may differ")
        if g0["optimizer"] == "sgd":
            raise ValueError(f"{what}: vectorised training supports Adam and AdamW; parameter "
                             f"group {i} asks for SGD")
        groups.append(_Group(
            names=names, lr=[float(r[1]["lr"]) for r in rows],
            weight_decay=[float(r[1]["weight_decay"]) for r in rows],
            decoupled=bool(g0["decoupled_weight_decay"]), betas=tuple(g0["betas"]),
            eps=float(g0["eps"]), clip_value=g0.get("clip_value"),
        ))
    return groups


def _per_member(values: list[float], like: Any) -> float | Any:
    """A Python float when every member has the same value (the single run's exact scalar
    arithmetic), else a ``(K, 1, ..., 1)`` tensor broadcasting against ``like``."""
    import torch

    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(
        -1, *([1] * (like.ndim - 1)))


def _adam_step(group: _Group, p: Any, g: Any, s: dict[str, Any], step: int) -> None:
    """One Adam/AdamW step of a stacked ``(K, ...)`` parameter ``p`` of ``group`` with its
    gradient ``g`` (value-clipped first where the group clips) and Adam state ``s``, in
    place; the arithmetic of ``torch.optim.Adam``'s single-tensor path, with per-member lr
    and decay. Element-wise: the same numbers on any number of threads."""
    beta1, beta2 = group.betas
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    if group.clip_value is not None:
        g.clamp_(-group.clip_value, group.clip_value)
    if any(w != 0 for w in group.weight_decay):
        if group.decoupled:
            p.mul_(_per_member([1 - lr * w for lr, w in
                                zip(group.lr, group.weight_decay, strict=True)], p))
        else:
            wd = _per_member(group.weight_decay, p)
            g = g.add(p, alpha=wd) if isinstance(wd, float) else g + wd * p
    s["exp_avg"].lerp_(g, 1 - beta1)
    s["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
    denom = (s["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group.eps)
    step_size = _per_member([lr / bias_correction1 for lr in group.lr], p)
    if isinstance(step_size, float):
        p.addcdiv_(s["exp_avg"], denom, value=-step_size)
    else:
        p.add_((-step_size) * s["exp_avg"] / denom)


# --------------------------------------------------------------------------- the step


def _draw_noise(generators: Sequence[Any], member: Any, like: Any) -> Any:
    """Each member's noise from its own generator, as ``torch.randn_like`` draws it; inside
    ``vmap``, ``member`` (a batched index) picks the member's draw."""
    import torch

    draws = torch.stack([torch.randn(like.shape, generator=g, dtype=like.dtype,
                                     device=like.device) for g in generators])  # (K, ...)
    return draws[member]


@contextmanager
def _member_options(model: Any, values: Mapping[str, Any]) -> Any:
    """Within the block ``model.config`` holds this member's value of each varying option."""
    if not values:
        yield
        return
    original = model.config
    config = copy.copy(original)
    for key, value in values.items():
        object.__setattr__(config, key, value)  # no __post_init__: the value is a tensor
    model.config = config
    try:
        yield
    finally:
        model.config = original


def _step_function(module: Any, template: Any, generators: Sequence[Any]) -> Callable[..., Any]:
    import torch
    from torch.func import functional_call, grad, vmap

    from disentkit.models import noise_source

    def member(trainable: dict[str, Any], fixed: dict[str, Any], x: Any, index: Any,
               options: dict[str, Any], t: int) -> Any:
        def loss(params: dict[str, Any]) -> Any:
            with noise_source(lambda like: _draw_noise(generators, index, like)), \
                    _member_options(template, options):
                total, terms = functional_call(
                    module, {f"model.{n}": v for n, v in {**params, **fixed}.items()}, (x, t))
            logged = {"loss": total, **dict(terms)}
            return total, {k: torch.as_tensor(v).detach().float().mean()
                           for k, v in logged.items()}

        return grad(loss, has_aux=True)(trainable)

    def step(trainable: dict[str, Any], fixed: dict[str, Any], x: Any, options: dict[str, Any],
             t: int) -> Any:
        index = torch.arange(len(generators), device=x.device)
        return vmap(member, in_dims=(0, 0, 0, 0, 0, None), randomness="same")(
            trainable, fixed, x, index, options, t)

    return step


def _stacked_layout(stacked: Any, channels_last: bool) -> Any:
    """``stacked`` ``(K, ...)`` re-laid so that each member's slice ``[k]`` of a 4-D weight is
    channels-last (the single run's layout) when ``channels_last``; else as it is."""
    import torch

    if not (channels_last and stacked.dim() == 5):
        return stacked
    k, o, i, h, w = stacked.shape
    out = torch.empty((k, o, h, w, i), dtype=stacked.dtype,
                      device=stacked.device).permute(0, 1, 4, 2, 3)  # (K, O, I, H, W)
    out.copy_(stacked)
    return out


# --------------------------------------------------------------------------- resume


def _resume_states(paths: Sequence[Path]) -> tuple[int, list[dict[str, Any] | None], list[str]]:
    """The step every member can resume from, each member's state at it, and notes."""
    latest: list[tuple[dict[str, Any], Path] | None] = []
    notes = []
    for path in paths:
        ckpt = path / CHECKPOINT_PATH
        if not (ckpt.is_file() or previous_checkpoint(ckpt).is_file()):
            latest.append(None)
            continue
        state, read_from, problems = load_latest_checkpoint(ckpt)
        if problems:
            notes.append(f"{path}: {'; '.join(problems)}: using {read_from.name}")
        latest.append((state, read_from))
    start = min(int(s[0]["step"]) if s is not None else 0 for s in latest)
    states: list[dict[str, Any] | None] = []
    for path, entry in zip(paths, latest, strict=True):
        if start == 0 or entry is None:
            states.append(None)
            continue
        state, read_from = entry
        if int(state["step"]) != start:
            older = previous_checkpoint(path / CHECKPOINT_PATH)
            state = load_checkpoint(older) if older.is_file() and older != read_from else {}
            if int(state.get("step", -1)) != start:
                raise ValueError(
                    f"cannot resume the vectorised run: member {str(path)!r} has no checkpoint "
                    f"at step {start}, where another member stopped; resume the members "
                    "one by one with fit(..., resume=True)")
            notes.append(f"{path}: ahead of the other members; resuming from {older.name} "
                         f"(step {start})")
        states.append(state)
    return start, states, notes


# --------------------------------------------------------------------------- fit


def fit_vectorized(
    configs: Sequence[RunConfig | Mapping[str, Any] | str | os.PathLike[str]],
    run_dirs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    strategy: str = "auto",
) -> list[Path]:
    """Train the runs ``configs`` as one vectorised model; write one run directory each.

    Args:
        configs: K run configs (:class:`RunConfig`, mappings or files) of one model, dataset
            and architecture that differ only in :data:`MEMBER_FIELDS` and the model's
            ``vectorized_options`` (see the module docstring).
        run_dirs: K run directories, or one directory holding the members
            (:func:`member_run_dirs`); default ``runs/<model>-<data>-seed<k>...``.
        resume: continue every member from its checkpoint (see the module docstring); a
            member without a run starts one. Changes allowed as for :func:`fit`.
        progress: show a progress bar (a line per logged step when not on a terminal).
        strategy: how the members' gradients are taken (see the module docstring):
            ``"vmap"`` (one batched computation), ``"loop"`` (member after member, bit for
            bit the single runs), ``"threads"`` (the loop's members side by side, a core
            each), or ``"auto"``: ``vmap`` on a GPU, ``loop`` on a CPU.

    Returns:
        the K run directories, in the order of ``configs``; each holds what :func:`fit`
        writes (evaluate them with :func:`~disentkit.train.evaluate_run`).

    Raises:
        ValueError: the configs cannot train vectorised (the message names the reason),
            a run directory that already holds a run (without ``resume``), a resume with a
            changed config, or a loss that became NaN/inf.

    Example:
        >>> import tempfile
        >>> cfgs = expand_configs({"model": "beta_vae", "data": "xyobject_tiny", "steps": 2,
        ...     "batch_size": 4, "accelerator": "cpu", "model_options": {"n_latents": 2}},
        ...     seeds="0-1")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     paths = fit_vectorized(cfgs, tmp, progress=False)
        ...     sorted(p.name for p in (paths[1] / "log").iterdir())
        ['metrics.csv']
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}; received {strategy!r}")
    cfgs = [build_config(c) for c in configs]
    problem = vectorize_problem(cfgs)
    if problem is not None:
        raise ValueError(f"cannot train these runs vectorised: {problem}")
    for cfg in cfgs:
        check_trackers(cfg.loggers)
    import torch

    from disentkit.data import get_dataset
    from disentkit.data.torch import FactorBatchLoader, to_float

    dataset = get_dataset(cfgs[0].data, **cfgs[0].data_options)
    cfgs = [resolve_config(c, dataset) for c in cfgs]
    problem = vectorize_problem(cfgs)
    if problem is None:
        cls = _model_cls(cfgs[0].model)
        problem = next((p for c in cfgs if (p := cls.vectorize_problem(
            _model_config(c))) is not None), None)
    if problem is not None:
        raise ValueError(f"cannot train these runs vectorised: {problem}")
    if run_dirs is None:
        if resume:
            raise ValueError("resuming needs the members' run directories (run_dirs)")
        paths = member_run_dirs(cfgs)
    elif isinstance(run_dirs, str | os.PathLike):
        paths = member_run_dirs(cfgs, run_dirs)
    else:
        paths = [Path(p).expanduser() for p in run_dirs]
        if len(paths) != len(cfgs):
            raise ValueError(f"run_dirs must name one directory per config ({len(cfgs)}); "
                             f"received {len(paths)}")
    if len({p.resolve() for p in paths}) != len(paths):
        raise ValueError(f"run_dirs must be distinct; received {[str(p) for p in paths]}")

    accelerator = cfgs[0].accelerator
    device = torch.device("cuda" if accelerator == "gpu" or (
        accelerator == "auto" and torch.cuda.is_available()) else "cpu")
    with ExitStack() as stack:
        for path in paths:
            stack.enter_context(hold_directory(path, what="run directory"))
        taken = [str(p) for p in paths if not resume and (
            (p / CONFIG_NAME).exists() or (p / CHECKPOINT_PATH).exists())]
        if taken:  # checked for every member before any is written
            raise ValueError(f"run directories {taken} already hold runs; continue them with "
                             "resume=True (--resume) or choose another run directory")
        for i, (cfg, path) in enumerate(zip(cfgs, paths, strict=True)):
            prepare_run_dir(cfg, path, resume)
            cfgs[i] = RunConfig.from_dict(read_json(path / CONFIG_NAME))
            remove_stale_temporaries(path / CHECKPOINT_PATH.parent)
            remove_stale_temporaries(path)
        previous_deterministic = torch.are_deterministic_algorithms_enabled()
        if cfgs[0].deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        try:
            if strategy == "auto":
                strategy = "vmap" if device.type == "cuda" else "loop"
            return _train(cfgs, paths, dataset, device, resume, progress,
                          FactorBatchLoader, to_float, strategy)
        finally:
            torch.use_deterministic_algorithms(previous_deterministic)


def _model_config(cfg: RunConfig) -> Any:
    """The model config dataclass of a resolved run config."""
    from disentkit.models import MODELS

    info = MODELS[cfg.model]
    return info.config_cls(**coerce_options(info.config_cls, cfg.model_options,
                                            where=f"model {cfg.model!r}"))


def _train(cfgs: list[RunConfig], paths: list[Path], dataset: Any, device: Any, resume: bool,
           progress: bool, loader_cls: Any, to_float: Any, strategy: str) -> list[Path]:
    import torch

    from disentkit.models import build_model, noise_source

    k_members = len(cfgs)
    lead = cfgs[0]
    what = f"model {lead.model!r}"
    start, states, notes = _resume_states(paths) if resume else (0, [None] * k_members, [])

    models, opts, generators = [], [], []
    for cfg, state in zip(cfgs, states, strict=True):
        torch.manual_seed(cfg.seed)  # as the single run: initial weights from the seed
        model = build_model(cfg.model, **dataclasses.asdict(_model_config(cfg)))
        if model.extra_steps():
            raise ValueError(f"cannot train {what} vectorised: it declares extra optimiser "
                             "steps")
        model.to(device)
        opt = build_optimizer(model.param_groups(), what=what, lr=cfg.lr,
                               overrides=cfg.optimizer)
        generator = torch.Generator(device=device)
        if device.type == "cpu":
            generator.set_state(torch.get_rng_state())  # the global RNG after initialisation
        else:
            generator.manual_seed(cfg.seed)  # the device RNG, untouched by initialisation
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizers"]["main"])
            rng = state["rng"]
            generator.set_state((rng["torch"] if device.type == "cpu" else rng["cuda"][0]).cpu())
        models.append(model)
        opts.append(opt)
        generators.append(generator)

    groups = _groups(models, opts, what)
    trainable_names = [n for g in groups for n in g.names]
    template = models[0]
    module = training_module(template, [])

    def stacked(getter: Callable[[Any], Any]) -> Any:
        return torch.stack([getter(m) for m in models]).detach()

    member_params = [dict(m.named_parameters()) for m in models]
    trainable = {n: stacked(lambda m, n=n: _named_tensor(m, n)) for n in trainable_names}
    fixed_names = [*(n for n, _ in template.named_parameters() if n not in trainable),
                   *(n for n, _ in template.named_buffers())]
    fixed = {n: stacked(lambda m, n=n: _named_tensor(m, n)) for n in fixed_names}
    adam_state: dict[str, dict[str, Any]] = {}
    for name in trainable_names:
        slots = [opt.state.get(member_params[i][name], {}) for i, opt in enumerate(opts)]
        adam_state[name] = {
            key: torch.stack([s[key] if key in s else torch.zeros_like(member_params[i][name])
                              for i, s in enumerate(slots)]).to(device)
            for key in ("exp_avg", "exp_avg_sq")}
    varying = {
        key: torch.tensor([float(getattr(_model_config(c), key)) for c in cfgs],
                          dtype=torch.float32, device=device)
        for key in type(template).vectorized_options
        if key in dataclasses.asdict(_model_config(lead))
        and len({json.dumps(c.model_options.get(key)) for c in cfgs}) > 1
    }
    step_fn = _step_function(module, template, generators) if strategy == "vmap" else None
    per_member = strategy in ("loop", "threads")
    channels_last = per_member and uses_channels_last(lead, device.type)
    grad_buffers: dict[str, Any] = {}
    if per_member:
        # each member's parameters become views of its slice of the stacked tensors, laid out
        # as its single run's, and its gradients accumulate into its slice of one buffer
        with torch.no_grad():
            for name in trainable_names:
                trainable[name] = _stacked_layout(trainable[name], channels_last)
                grad_buffers[name] = torch.zeros_like(trainable[name])  # same strides
                for i in range(k_members):
                    member_params[i][name].data = trainable[name][i]
                    member_params[i][name].grad = grad_buffers[name][i]

    def sync_members() -> list[Any]:
        """The members with the stacked weights of the current step (with ``"loop"`` and
        ``"threads"`` their parameters are views of the stack already)."""
        if per_member:
            return models
        with torch.no_grad():
            for i, model in enumerate(models):
                own = member_params[i]
                for name in trainable_names:
                    own[name].copy_(trainable[name][i])
                for name, value in fixed.items():
                    _named_tensor(model, name).copy_(value[i])
        return models

    def save(done: int) -> None:
        sync_members()
        for i, (cfg, path) in enumerate(zip(cfgs, paths, strict=True)):
            own = member_params[i]
            for name in trainable_names:
                opts[i].state[own[name]] = {
                    "step": torch.tensor(float(done), dtype=torch.float32),
                    "exp_avg": adam_state[name]["exp_avg"][i].clone(),
                    "exp_avg_sq": adam_state[name]["exp_avg_sq"][i].clone(),
                }
            gen_state = generators[i].get_state()
            rng = ({"torch": gen_state, "cuda": None} if device.type == "cpu" else
                   {"torch": torch.get_rng_state(), "cuda": [gen_state]})
            save_checkpoint(path / CHECKPOINT_PATH, {
                "step": done,  # clones: a view would save the whole stacked storage
                "model": {k: v.clone() for k, v in models[i].state_dict().items()},
                "optimizers": {"main": opts[i].state_dict()},
                "precision": {},
                "rng": rng,
                "config": json.dumps(cfg.to_dict()),
            })

    records = [RunRecord(c, p, start, dataset, m)
               for c, p, m in zip(cfgs, paths, models, strict=True)]
    loaders = [loader_cls(dataset, batch_size=c.batch_size, seed=c.seed, steps=c.steps,
                          start_step=start, sampling=c.sampling, num_workers=c.num_workers)
               for c in cfgs]
    for model in models:
        model.train()
    reporter = Progress(progress, lead.steps, start)
    for note in notes:
        warnings.warn(note, DisentkitWarning, stacklevel=2)
        reporter.note(note)
    where = paths[0].parent if len({p.parent for p in paths}) == 1 else paths[0]
    reporter.note(("resuming" if start else "training") + f" {k_members} members as one "
                  f"vectorised model in {where}" + (f" at step {start}" if start else ""))

    def member_grad(i: int, images: Any, t: int) -> dict[str, Any]:
        """Member ``i``'s forward and backward, as its single run takes them, into its
        slices of the stacked gradient buffers; its logged values."""
        for buffer in grad_buffers.values():
            buffer[i].zero_()
        x = to_float(images, device, max_value=loaders[i].max_value,
                     channels_last=channels_last)

        def draw(like: Any) -> Any:
            return torch.randn(like.shape, generator=generators[i], dtype=like.dtype,
                               device=like.device)

        with noise_source(draw):  # a context variable: each worker thread has its own
            total, terms = models[i].loss(x, models[i](x), t)
        total.backward()
        return {key: torch.as_tensor(value).detach().float().mean()
                for key, value in {"loss": total, **dict(terms)}.items()}

    def member_grads(t: int, batches: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """``"loop"``/``"threads"``: every member's :func:`member_grad`, in turn or on the
        worker threads."""
        images = [b[0] for b in batches]
        if workers is None:
            out = [member_grad(i, images[i], t) for i in range(k_members)]
        else:
            out = list(workers.map(lambda i: member_grad(i, images[i], t), range(k_members)))
        return grad_buffers, {key: torch.stack([o[key] for o in out]) for key in out[0]}

    updates = [(group, name) for group in groups for name in group.names]

    def step(t: int, batches: Any) -> dict[str, Any]:
        if per_member:
            grads, logged = member_grads(t, batches)
        else:
            x = torch.stack([to_float(images, device, max_value=loader.max_value)
                             for (images, _), loader in zip(batches, loaders, strict=True)])
            grads, logged = step_fn(trainable, fixed, x, varying, t)  # (K, ...) each

        def update(u: tuple[_Group, str]) -> None:
            group, name = u
            with torch.no_grad():  # grad mode is per thread
                _adam_step(group, trainable[name], grads[name], adam_state[name], t + 1)

        if workers is None:
            for u in updates:
                update(u)
        else:
            list(workers.map(update, updates))
        return logged

    status = "failed"
    stack = ExitStack()
    workers = None
    n_workers = min(k_members, torch.get_num_threads())
    if strategy == "threads" and device.type == "cpu" and n_workers > 1:
        workers = stack.enter_context(_one_thread_workers(n_workers))
    try:
        with stack, reporter:
            drive(zip(*loaders, strict=True), step, cfg=lead, start=start, members=k_members,
                  records=records, save=save, reporter=reporter, score_models=sync_members,
                  where=lambda i: f"member {paths[i]}")
        status = "success"
    finally:
        for record in records:
            record.close(status)
    with torch.no_grad():  # each member's own weights again, no longer views of the stack
        for own in member_params if per_member else ():
            for name in trainable_names:
                own[name].data = own[name].data.clone()
                own[name].grad = None
    for cfg, model, path in zip(cfgs, models, paths, strict=True):
        save_run_model(model, cfg, dataset, path)
    return paths


@contextmanager
def _one_thread_workers(n: int) -> Any:
    """A pool of ``n`` threads whose torch operations each run on one intra-op thread;
    the process's thread setting is restored afterwards (a worker's
    ``torch.set_num_threads(1)`` binds its own OpenMP threads, and sets the default that
    threads starting later inherit)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    previous = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="disentkit-member",
                                initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield pool
    finally:
        torch.set_num_threads(previous)


def _named_tensor(model: Any, name: str) -> Any:
    """The parameter or buffer ``name`` (dotted) of ``model``."""
    module_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(module_name) if module_name else model
    return getattr(owner, leaf)


# --------------------------------------------------------------------------- entry point


def train_members(
    config: RunConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    seeds: str | Iterable[int] | None = None,
    set_lists: Iterable[str] = (),
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    strategy: str = "auto",
) -> list[Path]:
    """What ``disentkit train --seeds 0-7 --set-list model.beta=1,4`` does before scoring.

    Expands ``config`` (:func:`expand_configs`), names the members' run directories
    (:func:`member_run_dirs`: ``RUN_DIR/seed<k>...``, or ``runs/<model>-<data>-seed<k>...``)
    and trains them with :func:`fit_vectorized` (``strategy``: see there).

    Returns:
        the members' run directories.
    """
    configs = expand_configs(config, seeds=seeds, set_lists=list(set_lists))
    if resume and run_dir is None:
        raise ValueError("--resume needs --run-dir DIR (the directory holding the members)")
    return fit_vectorized(configs, member_run_dirs(configs, run_dir) if run_dir is not None
                          else None, resume=resume, progress=progress, strategy=strategy)
