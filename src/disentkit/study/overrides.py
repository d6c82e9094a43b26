"""Dotted overrides applied to every run of a study, and their record in the study directory.

``disentkit study run SPEC --set train.steps=20 --set eval.n_samples=1000`` tries a spec
cut down without editing it. Keys name the spec's sections:

- ``train.<key>``: the run-config field ``<key>`` (``train.steps`` → ``steps``,
  ``train.model.arch`` → ``model.arch``), as the spec's ``train`` section sets it;
- any other key is a run-config dotted key as in ``disentkit train --set``:
  ``eval.n_samples``, ``model.<option>``, ``data.<option>``, ``lr``, ``steps``, ...

The overrides are applied after the spec is expanded (after its ``train``, ``eval``,
model and dataset options and swept hyper-parameters), so they win over all of these.
They may not change what a run trains (``model``, ``data``, ``seed``) nor a key the spec
sweeps: both are the spec's job, and the results table's ``hp.*`` columns would lie.

The study directory records the overrides it was started with in ``study_state.json``
(``{"overrides": ["steps=20", "eval.n_samples=1000"]}``, keys already mapped). Running
the study again with other overrides, or without them, is refused like a different spec:
its finished runs were trained with the recorded ones and are never redone, so mixing
would put runs of two configurations into one table. Every run's ``config.json`` and the
table's ``config`` column hold the overridden config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from disentkit._atomic import write_json
from disentkit.rundir import STATE_NAME
from disentkit.study.spec import RunSpec
from disentkit.train.config import RunConfig, parse_overrides

__all__ = ["STATE_NAME", "normalise_overrides", "override_runs", "read_overrides",
           "record_overrides"]

_FIXED = ("model", "data", "seed", "model.name", "data.name")
"""Run-config keys the spec's datasets, models and seeds decide."""


def normalise_overrides(overrides: Iterable[str] | None) -> list[str]:
    """Check ``key=value`` overrides and map spec-section keys to run-config keys.

    Args:
        overrides: ``"key=value"`` strings (``--set`` values); ``train.`` is stripped from
            a key, other keys are kept as run-config dotted keys.

    Returns:
        the overrides as ``"key=value"`` strings with run-config keys, in the given order.

    Raises:
        ValueError: a string that is not ``key=value`` with a dotted key, or a key naming
            what the spec decides (model, dataset, seed).

    Example:
        >>> normalise_overrides(["train.steps=20", "eval.n_samples=1000", "model.beta=4"])
        ['steps=20', 'eval.n_samples=1000', 'model.beta=4']
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    out = []
    for key, value in parse_overrides(overrides):
        mapped = key.removeprefix("train.")
        if mapped in _FIXED:
            raise ValueError(
                f"study overrides must not set {key!r}: the spec's datasets, models and "
                f"seeds say what each run trains; received --set {key}={value}. Hint: "
                "edit the spec, or override options such as model.<option>"
            )
        out.append(f"{mapped}={value}")
    return out


def _as_dict(overrides: Sequence[str]) -> dict[str, str]:
    """Key → value text (the last of a repeated key wins, as when they are applied)."""
    return {key: str(value).strip() for key, value in parse_overrides(overrides)}


def override_runs(runs: Sequence[RunSpec], overrides: Iterable[str] | None) -> list[RunSpec]:
    """The runs with ``overrides`` applied to each run's config.

    Each config is rebuilt with :meth:`disentkit.train.RunConfig.from_dict` (its
    ``overrides`` argument), so values are converted and checked as for ``disentkit train
    --set``.

    Args:
        runs: expanded runs (:func:`disentkit.study.expand`).
        overrides: ``"key=value"`` strings (mapped with :func:`normalise_overrides`).

    Raises:
        ValueError: a bad override, a key the spec sweeps, or a value a run's config does
            not accept (naming the run).
    """
    pairs = normalise_overrides(overrides)
    if not pairs:
        return list(runs)
    swept = sorted({k for r in runs for k in r.hparams} & set(_as_dict(pairs)))
    if swept:
        raise ValueError(
            f"study overrides must not set a hyper-parameter the spec sweeps; received "
            f"{swept}. Hint: change the spec's grid or random section instead"
        )
    out = []
    for run in runs:
        try:
            config = RunConfig.from_dict(run.config, overrides=pairs).to_dict()
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ValueError(
                f"override(s) {pairs} do not apply to run {run.model_num} ({run.model} on "
                f"{run.dataset}, seed {run.seed}): {message}"
            ) from None
        out.append(dataclasses.replace(run, config=config))
    return out


def read_overrides(study_dir: str | os.PathLike[str]) -> list[str]:
    """The overrides recorded in a study directory (``[]`` when none were recorded)."""
    path = Path(study_dir).expanduser() / STATE_NAME
    if not path.is_file():
        return []
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the study state {str(path)!r}: {exc}") from None
    overrides = state.get("overrides", []) if isinstance(state, dict) else None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ValueError(f"{str(path)!r} must hold {{'overrides': ['key=value', ...]}}; "
                         f"received {state!r}")
    return overrides


def record_overrides(study_dir: str | os.PathLike[str], overrides: Iterable[str] | None) -> None:
    """Record ``overrides`` in ``study_dir/study_state.json``, or check them against the
    recorded ones.

    A study directory without a state file but with finished runs was started without
    overrides.

    Raises:
        ValueError: the directory records other overrides (compared key by key after
            mapping, so order and ``train.`` prefixes do not matter).
    """
    study = Path(study_dir).expanduser()
    given = normalise_overrides(overrides)
    path = study / STATE_NAME
    if path.is_file() or (study / "runs").is_dir():
        recorded = read_overrides(study)
        if _as_dict(recorded) != _as_dict(given):
            shown = " ".join(f"--set {o}" for o in recorded) or "no --set"
            raise ValueError(
                f"{str(study)!r} holds a study run with overrides {recorded}; received "
                f"{given}. Its finished runs are never redone, so the table would mix two "
                f"configurations. Hint: run it again with {shown}, or use another --out "
                "directory"
            )
        if path.is_file():
            return
    write_json(path, {"overrides": given})

