"""The run configuration: what to train, on what, for how long, and how.

A :class:`RunConfig` is plain data, built once on one path: read a YAML or JSON file (or
take a mapping), apply top-level fields and dotted overrides (``--set
model.weight_decay=0.1``), validate, freeze (:func:`build_config`). Every consumer (the
trainer, the CLI, the study runner) receives that validated object; the trainer writes it
into the run directory as ``config.json`` with every model default spelled out
(:func:`resolve_config`).

The classes are pydantic dataclasses: field types and ranges are declared on the fields
(``Field(ge=1)``), pydantic converts values in lax mode, unknown keys are rejected, and
:func:`config_json_schema` exports the JSON Schema for editors. On top of pydantic this
module keeps two things: command-line text becomes the structure a field expects
(``"0.9,0.999"`` → a list, ``"none"`` → null) before validation, and pydantic's errors
become one ``ValueError`` sentence naming the dotted key, what is expected and the value
received.

File layout (YAML shown; JSON is the same structure)::

    model: qlae                 # registry name (`disentkit.models.MODELS`)
    model_options:              # fields of the model's config dataclass
      weight_decay: 0.1
    data: dsprites_procedural   # registry name (`disentkit.data.DATASETS`)
    data_options: {}            # options of the dataset factory
    steps: 10000
    batch_size: 64
    optimizer: {clip_value: null}
    eval: {n_samples: 10000, mode: reference}
    loggers:                    # trackers besides log/metrics.csv; null or absent: off
      tensorboard: {}           # RUN/log/tensorboard
      wandb: {project: disent, mode: offline}

``model`` and ``data`` may also be sections, ``model: {name: qlae, weight_decay: 0.1}``.
Dotted keys address sections: ``model.X`` is ``model_options.X``, ``data.X`` is
``data_options.X``, ``optimizer.X`` and ``eval.X`` are fields of :class:`OptimizerConfig`
and :class:`EvalConfig` (``eval.options.infomec.protocol`` reaches into a mapping), and
``model.name``/``data.name`` are the registry names. ``loggers.X.Y`` sets a tracker's
setting and turns it on (``loggers.wandb.project=disent``); ``loggers=[tensorboard]``
still reads the list form.

Values given as strings (the command line's ``--set key=value``) are converted to the
field's type: ``"100"`` or ``"2e3"`` for an ``int``, ``"1e-3"`` for a ``float``, ``"true"``
for a ``bool``, ``"none"``/``"null"`` for an optional field, ``"0.9,0.999"`` or
``"[0.9, 0.999]"`` for a tuple or list. A value that does not fit raises ``ValueError``
naming the field, the expected type (or range) and the value; an unknown key raises
``ValueError`` with a did-you-mean and the valid keys.

Example:
    >>> cfg = build_config({"model": "m", "data": "d"}, ["steps=100"], check_names=False)
    >>> cfg.steps, cfg.batch_size, cfg.precision
    (100, 64, '32')
    >>> build_config({"model": "m", "data": "d", "stepz": 1}, check_names=False)
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'stepz' (did you mean 'steps'?); valid keys: ...
    >>> build_config({"model": "m", "data": "d"}, ["optimizer.betas=0.9,1.5"],
    ...              check_names=False)
    Traceback (most recent call last):
    ...
    ValueError: config field 'optimizer.betas' must lie in [0, 1) or null; received '0.9,1.5'
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.dataclasses import dataclass, is_pydantic_dataclass

from disentkit.metrics import METRICS

__all__ = [
    "ACCELERATORS",
    "EVERY_METRICS",
    "LOGGERS",
    "OPTIMIZERS",
    "PRECISIONS",
    "EvalConfig",
    "LoggersConfig",
    "MLflowConfig",
    "OptimizerConfig",
    "RunConfig",
    "TensorBoardConfig",
    "WandbConfig",
    "apply_overrides",
    "build_config",
    "coerce",
    "coerce_options",
    "config_json_schema",
    "load_config",
    "parse_overrides",
    "read_config_file",
    "resolve_config",
    "resolved_config_text",
]

Precision = Literal["32", "bf16-mixed", "16-mixed"]
Accelerator = Literal["auto", "cpu", "gpu"]
OptimizerName = Literal["adam", "adamw", "sgd"]
Sampling = Literal["auto", "uniform", "epoch", "factors"]
EvalMode = Literal["reference", "fast"]
WandbMode = Literal["online", "offline", "disabled"]
MemoryFormat = Literal["auto", "contiguous", "channels_last"]
PRECISIONS = typing.get_args(Precision)
ACCELERATORS = typing.get_args(Accelerator)
OPTIMIZERS = typing.get_args(OptimizerName)
SAMPLINGS = typing.get_args(Sampling)
EVAL_MODES = typing.get_args(EvalMode)
WANDB_MODES = typing.get_args(WandbMode)
#: logger names of the list form (``loggers: [csv, tensorboard]``); CSV is always on
LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")
EVERY_METRICS = ("infomec", "dci", "mig")  # during-training metrics when eval.every_metrics is null

# Unknown keys are errors; attribute docstrings become descriptions in the JSON Schema.
_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)

_Beta = Annotated[float, Field(ge=0, lt=1)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


@dataclass(frozen=True, config=_CONFIG)
class OptimizerConfig:
    """Optimiser settings applied to every parameter group of the model's main step.

    ``None`` (the default of each field) means "the model's choice": the value the model's
    ``param_groups()`` sets for that group (e.g. QLAE's AdamW with weight decay on weights
    and plain Adam on biases and codebook values), else the fallback in brackets. A value
    set here overrides every main group. Extra steps (critics, discriminators) keep the
    settings their ``ExtraStep.optimizer`` declares.
    """

    name: OptimizerName | None = None
    """Optimiser family [adamw]."""
    betas: tuple[_Beta, _Beta] | None = None
    """Adam/AdamW betas, each in [0, 1) [(0.9, 0.999)]."""
    eps: _NonNegative | None = None
    """Adam/AdamW epsilon [1e-8]."""
    weight_decay: _NonNegative | None = None
    """Coupled (adam/sgd) or decoupled (adamw) weight decay [0]."""
    momentum: _NonNegative | None = None
    """SGD momentum [0]."""
    clip_value: _Positive | None = None
    """Element-wise gradient value clipping [none]."""


def _known_metrics(names: list[str] | None, default: str) -> list[str] | None:
    """``names`` without duplicates; ``KeyError`` (listing the known ones) for an unknown one."""
    if names is None:
        return None
    if not names:
        raise ValueError(f"must name at least one metric or be null ({default})")
    for name in names:
        METRICS[name]  # raises, listing the known metrics
    return list(dict.fromkeys(names))


@dataclass(frozen=True, config=_CONFIG)
class EvalConfig:
    """How a run is scored: at the end of ``disentkit train`` and, with ``every``, during
    training."""

    n_samples: int = Field(10_000, ge=2)
    """Factor configurations sampled and rendered for the metrics."""
    metrics: list[str] | None = None
    """Metric registry names; null: the default suite."""
    mode: EvalMode = "fast"
    """Metric settings of the end-of-training scores: fast (the estimators metric IDs
    mark as fast, seconds) by default; reference (the published estimators, minutes for
    DCI) with `disentkit evaluate RUN --mode reference` or in the recipes."""
    seed: int = Field(0, ge=0)
    """Seed of the sampled factors, of sampled representations and of the metrics."""
    batch_size: int = Field(256, ge=1)
    """Images per encoder call during evaluation."""
    n_bootstrap: int = Field(0, ge=0)
    """Bootstrap replicates for confidence intervals (0: none)."""
    baselines: bool = False
    """Also score the factors themselves and random latents."""
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-metric keyword options for every representation scored, e.g.
    ``{"infomec": {"protocol": "training"}}``; applied after the mode's fast options."""
    every: int = Field(0, ge=0)
    """During training, score the model every this many steps (0: off)."""
    every_n_samples: int = Field(2000, ge=2)
    """Samples for the during-training scores."""
    every_metrics: list[str] | None = None
    """Metrics for the during-training scores; null: infomec, dci and mig."""
    every_mode: EvalMode = "fast"
    """Metric settings for the during-training scores."""

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: list[str] | None) -> list[str] | None:
        return _known_metrics(value, "the default suite")

    @field_validator("every_metrics")
    @classmethod
    def _check_every_metrics(cls, value: list[str] | None) -> list[str] | None:
        return _known_metrics(value, ", ".join(EVERY_METRICS))

    @field_validator("options")
    @classmethod
    def _check_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, options in value.items():
            METRICS[name].check_options(options)  # unknown metric or option: listed
        return value


def _non_empty(value: str | None, what: str) -> str | None:
    if value is not None and not value.strip():
        raise ValueError(f"must be a non-empty {what} or null; received {value!r}")
    return value


@dataclass(frozen=True, config=_CONFIG)
class TensorBoardConfig:
    """TensorBoard event files (written with ``torch.utils.tensorboard``)."""

    dir: str | None = None
    """Folder of the event files; null: RUN/log/tensorboard. A relative path is taken
    relative to the run directory."""

    @field_validator("dir")
    @classmethod
    def _check_dir(cls, value: str | None) -> str | None:
        return _non_empty(value, "folder")


@dataclass(frozen=True, config=_CONFIG)
class MLflowConfig:
    """An MLflow run (through ``MlflowClient``)."""

    tracking_uri: str | None = None
    """Tracking URI (``http://...``, ``sqlite:///...``, ``file:///...``) or a folder for a
    file store (relative: to the run directory); null: a file store in RUN/log/mlruns."""
    experiment: str = "disentkit"
    """Experiment name (created when missing)."""
    run_name: str | None = None
    """Run name; null: the run directory's name."""

    @field_validator("tracking_uri", "run_name")
    @classmethod
    def _check_text(cls, value: str | None) -> str | None:
        return _non_empty(value, "text")

    @field_validator("experiment")
    @classmethod
    def _check_experiment(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must be a non-empty experiment name; received {value!r}")
        return value


@dataclass(frozen=True, config=_CONFIG)
class WandbConfig:
    """A Weights & Biases run (``wandb.init``)."""

    project: str = "disentkit"
    """W&B project."""
    entity: str | None = None
    """W&B entity (user or team); null: the account's default."""
    name: str | None = None
    """Display name; null: the run directory's name."""
    group: str | None = None
    """Group of runs (e.g. a study's name)."""
    tags: list[str] = Field(default_factory=list)
    """Tags of the run."""
    mode: WandbMode | None = None
    """online, offline (sync later with `wandb sync`) or disabled; null: WANDB_MODE, else
    online."""
    dir: str | None = None
    """Folder that receives W&B's wandb/ folder; null: RUN/log. A relative path is taken
    relative to the run directory."""

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must be a non-empty project name; received {value!r}")
        return value

    @field_validator("entity", "name", "group", "dir")
    @classmethod
    def _check_text(cls, value: str | None) -> str | None:
        return _non_empty(value, "text")


def _loggers_mapping(value: Any) -> Any:
    """The list form of ``loggers`` (``[csv, tensorboard]``, ``"tensorboard,mlflow"``) as
    the section form (``{tensorboard: {}}``); ``csv`` is dropped (always on). Anything
    else is returned as it is, for pydantic to check."""
    if isinstance(value, str):
        value = [v.strip() for v in value.strip().strip("[]").split(",") if v.strip()]
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k != "csv"}
    if not isinstance(value, list | tuple):
        return value
    unknown = [name for name in value if name not in LOGGERS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), LOGGERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"takes names from {list(LOGGERS)}; received {unknown}{hint}")
    return {name: {} for name in dict.fromkeys(value) if name != "csv"}


@dataclass(frozen=True, config=_CONFIG)
class LoggersConfig:
    """Where the training log goes besides ``log/metrics.csv`` (always written).

    A tracker is on when its section is given (``{}``: its defaults); null leaves it off.
    The list form ``[csv, tensorboard]`` is read as ``{tensorboard: {}}``.
    """

    tensorboard: TensorBoardConfig | None = None
    """TensorBoard settings (see TensorBoardConfig); null: off."""
    mlflow: MLflowConfig | None = None
    """MLflow settings (see MLflowConfig); null: off."""
    wandb: WandbConfig | None = None
    """Weights & Biases settings (see WandbConfig); null: off."""

    @property
    def names(self) -> list[str]:
        """The loggers in use, ``csv`` first: ``["csv", "tensorboard", ...]``."""
        return ["csv", *(n for n in LOGGERS[1:] if getattr(self, n) is not None)]


@dataclass(frozen=True, config=_CONFIG)
class RunConfig:
    """Everything that defines a training run (see the module docstring for the layout).

    Build one with :func:`build_config` (or :meth:`from_dict` / :func:`load_config`): the
    result is validated and frozen.
    """

    model: str
    """Model registry name."""
    data: str
    """Dataset registry name."""
    model_options: dict[str, Any] = Field(default_factory=dict)
    """Fields of the model's config dataclass."""
    data_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the dataset factory."""
    steps: int = Field(10_000, ge=1)
    """Optimisation iterations (reference runs: 2e5 and more)."""
    batch_size: int = Field(64, ge=1)
    """Images per iteration, over all devices."""
    seed: int = Field(0, ge=0)
    """Seeds torch's RNG (initialisation, sampling) and the batches."""
    lr: _Positive | None = None
    """Learning rate of every main group; null: the model's, else 1e-3."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """Optimiser settings (see OptimizerConfig)."""
    sampling: Sampling = "auto"
    """Batch sampling rule."""
    num_workers: int = Field(0, ge=0)
    """Batch-producing worker processes (batches do not depend on it)."""
    checkpoint_every: int = Field(1000, ge=1)
    """Write checkpoints/last.ckpt every this many steps."""
    log_every: int = Field(100, ge=1)
    """Write averaged losses to log/metrics.csv every this many steps."""
    precision: Precision = "32"
    """Lightning precision."""
    accelerator: Accelerator = "auto"
    """Lightning accelerator."""
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Devices (processes) to train on; more than 1: DDP."""
    strategy: str = "auto"
    """Lightning strategy ("auto", "ddp", ...)."""
    deterministic: bool = False
    """torch.use_deterministic_algorithms during training."""
    memory_format: MemoryFormat = "auto"
    """Layout of the weights and images in training: channels_last, contiguous, or auto
    (channels_last on a CPU for the architectures that train faster so, e.g. dlib; the
    weights differ from a contiguous run's by float rounding only)."""
    loggers: LoggersConfig = Field(default_factory=LoggersConfig)
    """Experiment trackers besides log/metrics.csv (see LoggersConfig); the list form
    [csv, tensorboard, mlflow, wandb] is accepted too."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """How the run is scored (see EvalConfig)."""
    recipe: str | None = None
    """The recipe the config started from, as name@version (``disentkit recipes``);
    provenance only: every value is in the fields above."""

    # -- checks (run by pydantic, in field order) ----------------------------------------
    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str, info: ValidationInfo) -> str:
        if _checking_names(info):
            _models()[value]  # raises KeyError, listing the known models
        return value

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str, info: ValidationInfo) -> str:
        if _checking_names(info):
            from disentkit.data import DATASETS  # imports torch: only when names are checked

            DATASETS[value]  # raises KeyError, listing the known datasets
        return value

    @field_validator("model_options")
    @classmethod
    def _check_model_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("model")
        if name is None or not _checking_names(info):
            return value
        try:
            return coerce_options(_models()[name].config_cls, value, where=f"model {name!r}")
        except ValueError as exc:
            raise _Verbatim(str(exc)) from None

    @field_validator("loggers", mode="before")
    @classmethod
    def _read_logger_names(cls, value: Any) -> Any:
        return _loggers_mapping(value)

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        if not value:
            raise ValueError("must be a Lightning strategy name")
        return value

    # -- construction and output ---------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        overrides: Iterable[str] | Mapping[str, Any] = (),
        *,
        check_names: bool = True,
    ) -> RunConfig:
        """Build a checked config from a (nested) dict plus dotted overrides.

        The same as :func:`build_config` with a mapping as the source.

        Args:
            data: the file's content (``model``/``data`` may be names or sections).
            overrides: ``"key=value"`` strings (values converted to the field's type) or
                a mapping of dotted keys to values.
            check_names: look ``model``/``data`` up in the registries and check the model
                options against the model's config dataclass (imports torch).

        Raises:
            ValueError: unknown key, value of the wrong type or out of range, unknown model
                option; the message names the field, the expected type and the value.
            KeyError: unknown model or dataset name (lists the known ones).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a run config must be a mapping; received {type(data).__name__}")
        return build_config(data, overrides, check_names=check_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples become lists); :meth:`from_dict` reads it back."""
        return _RUN_CONFIG.dump_python(self, mode="json", fallback=_json_fallback)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with top-level fields changed and validated (names are looked up again
        only if they were for this config)."""
        return _validate({**self.to_dict(), **changes}, check_names=_names_checked(self))


_RUN_CONFIG: TypeAdapter[RunConfig] = TypeAdapter(RunConfig)
# Set on a config whose model and dataset names were looked up and whose model options
# were converted by the model's config dataclass, so that no consumer does it twice.
_NAMES_CHECKED = "_disentkit_names_checked"


class _Verbatim(ValueError):
    """A validation message that names its key already (model options)."""


def _checking_names(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("check_names"))


def _names_checked(config: RunConfig) -> bool:
    return bool(getattr(config, _NAMES_CHECKED, False))


def _models() -> Any:
    from disentkit.models import MODELS  # imports torch: only when names are checked

    return MODELS


def _json_fallback(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy/torch scalars
        return value.item()
    return str(value)


# --------------------------------------------------------------------------- building


def build_config(
    source: RunConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    check_names: bool = True,
    **fields: Any,
) -> RunConfig:
    """The one way to a :class:`RunConfig`: load → fields → overrides → validate → frozen.

    Args:
        source: a YAML/JSON file, a mapping (a file's content), a :class:`RunConfig`, or
            ``None`` (start from ``fields`` alone). A validated ``RunConfig`` without
            fields or overrides is returned as it is.
        overrides: dotted ``"key=value"`` strings (``--set``; values converted to the
            field's type) or a mapping of dotted keys to values, applied last.
        check_names: look ``model``/``data`` up in the registries and convert the model
            options with the model's config dataclass (imports torch).
        fields: top-level values (``model=``, ``steps=``, ...) applied after the source and
            before ``overrides``; ``None`` values are ignored.

    Raises:
        ValueError: unreadable file, unknown key, a value of the wrong type or out of
            range, an unknown model option; the message names the dotted key, what is
            expected and the value received.
        KeyError: unknown model, dataset or metric name (lists the known ones).
        TypeError: ``source`` of another type.

    Example:
        >>> cfg = build_config(model="m", data="d", check_names=False,
        ...                    overrides=["lr=1e-3", "optimizer.betas=0.5,0.9"])
        >>> cfg.lr, cfg.optimizer.betas
        (0.001, (0.5, 0.9))
        >>> build_config(cfg, check_names=False) is cfg
        True
    """
    given = {k: v for k, v in fields.items() if v is not None}
    if isinstance(source, RunConfig):
        if not given and not overrides and (_names_checked(source) or not check_names):
            return source
        tree: Mapping[str, Any] = source.to_dict()
    elif source is None:
        tree = {}
    elif isinstance(source, Mapping):
        tree = source
    elif isinstance(source, str | os.PathLike):
        tree = read_config_file(source)
    else:
        raise TypeError(f"config must be a RunConfig, a mapping or a file path; received "
                        f"{type(source).__name__}")
    tree = apply_overrides(apply_overrides(tree, given), overrides)
    return _validate(tree, check_names=check_names)


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    check_names: bool = True,
    **fields: Any,
) -> RunConfig:
    """Read a run config from a YAML/JSON file (optional), then apply fields and overrides.

    The same as :func:`build_config` with a file (or nothing) as the source.

    Example:
        >>> load_config(model="m", data="d", steps=5, check_names=False).steps
        5
    """
    return build_config(path, overrides, check_names=check_names, **fields)


def _validate(tree: Mapping[str, Any], *, check_names: bool) -> RunConfig:
    try:
        config = _RUN_CONFIG.validate_python(_prepare(tree, RunConfig),
                                             context={"check_names": check_names})
    except ValidationError as exc:
        for error in exc.errors():  # an unknown registry name stays a KeyError (known names)
            reason = error.get("ctx", {}).get("error")
            if isinstance(reason, KeyError):
                raise reason from None
        raise ValueError(_explain(exc, RunConfig, tree)) from None
    if check_names:
        object.__setattr__(config, _NAMES_CHECKED, True)  # frozen: a private mark only
    return config


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping stored in a YAML or JSON config file (``ValueError`` if unreadable)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read config file {str(p)!r}: {exc.strerror or exc}") from None
    try:
        content = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot parse config file {str(p)!r}: {exc}") from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ValueError(
            f"config file {str(p)!r} must hold a mapping of keys to values; received "
            f"{type(content).__name__}"
        )
    return content


# --------------------------------------------------------------------------- resolution


def resolve_config(config: RunConfig, dataset: Any = None) -> RunConfig:
    """``config`` with every model option written out (the model config's defaults).

    This is what a run directory's ``config.json`` holds. A model config with an
    ``image_shape`` field ``(C, H, W)`` gets the dataset's shape unless the options set it;
    a different explicit shape is an error.

    Args:
        config: a validated config (its names are looked up here if they were not yet).
        dataset: the dataset ``config.data`` names, if already built (for its image shape).

    Raises:
        ValueError: the model config rejects the options, or the shapes disagree.
    """
    from disentkit.data import get_dataset  # imports torch

    config = build_config(config)
    info = _models()[config.model]
    options = dict(config.model_options)
    if "image_shape" in {f.name for f in dataclasses.fields(info.config_cls)}:
        ds = dataset if dataset is not None else get_dataset(config.data, **config.data_options)
        h, w, c = ds.image_shape
        shape = (int(c), int(h), int(w))
        given = options.get("image_shape")
        if given is None:
            options["image_shape"] = shape
        elif tuple(given) != shape:
            raise ValueError(
                f"model option image_shape={tuple(given)} does not match dataset "
                f"{config.data!r}, whose images are (C, H, W) = {shape}"
            )
    try:
        model_config = info.config_cls(**options)
    except TypeError as exc:
        raise ValueError(f"model {config.model!r}: {exc}") from None
    resolved = dataclasses.replace(config, model_options=dataclasses.asdict(model_config))
    object.__setattr__(resolved, _NAMES_CHECKED, True)  # the options come from the model config
    return resolved


def resolved_config_text(
    config: RunConfig, fmt: Literal["yaml", "json"] = "yaml", dataset: Any = None
) -> str:
    """The fully resolved config as YAML or JSON text (``disentkit train --print-config``).

    Every field and every model option is written out (:func:`resolve_config`); the text,
    saved to a file, is accepted by ``--config`` / :func:`load_config` and gives the same
    config, so the same run.

    Raises:
        ValueError: ``fmt`` is not ``"yaml"`` or ``"json"``, or the config does not resolve.
    """
    if fmt not in ("yaml", "json"):
        raise ValueError(f"fmt must be 'yaml' or 'json'; received {fmt!r}")
    data = resolve_config(config, dataset).to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a run config file (model and data as names, options as mappings).

    Point an editor at it (e.g. a ``# yaml-language-server: $schema=...`` line) to get
    completion and checks of keys, types and ranges. Model and dataset options are free-form
    here: they depend on the model and dataset named.

    Example:
        >>> schema = config_json_schema()
        >>> schema["required"], schema["properties"]["steps"]["minimum"]
        (['model', 'data'], 1)
    """
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **_RUN_CONFIG.json_schema()}


# --------------------------------------------------------------------------- overrides


class _CLIValue(str):
    """A value typed on the command line: parsed as YAML where the field type is unknown."""

    __slots__ = ()


def parse_overrides(items: Iterable[str] | None) -> list[tuple[str, Any]]:
    """Parse ``key=value`` strings into ``(dotted_key, value)`` pairs (values kept as text).

    Example:
        >>> parse_overrides(["steps=100", "model.weight_decay=0.1"])
        [('steps', '100'), ('model.weight_decay', '0.1')]
    """
    out: list[tuple[str, Any]] = []
    for item in items or ():
        if not isinstance(item, str):
            raise ValueError(f"overrides are 'key=value' strings; received {item!r}")
        key, equals, value = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not equals or not key or not all(p.isidentifier() for p in parts):
            raise ValueError(
                f"--set expects KEY=VALUE with a dotted key, e.g. --set steps=100 or "
                f"--set model.weight_decay=0.1; received {item!r}"
            )
        out.append((key, _CLIValue(value.strip())))
    return out


def apply_overrides(
    tree: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """A copy of a config mapping in normal form, with dotted overrides set.

    Normal form: ``model``/``data`` sections are split into the name and
    ``model_options``/``data_options``. Dotted keys: ``model.X`` sets ``model_options.X``,
    ``data.X`` sets ``data_options.X``, ``model.name``/``data.name`` the names, any other
    ``a.b.c`` the nested mapping (nothing is validated here; :func:`build_config` does).

    Args:
        tree: a config mapping (a file's content); not changed.
        overrides: ``"key=value"`` strings (:func:`parse_overrides`) or a mapping of dotted
            keys to values.

    Example:
        >>> apply_overrides({"model": {"name": "qlae", "weight_decay": 0.1}},
        ...                 {"data": "d", "model.n_latents": 6, "eval.mode": "fast"})
        {'model': 'qlae', 'model_options': {'weight_decay': 0.1, 'n_latents': 6}, 'data': 'd', 'eval': {'mode': 'fast'}}
    """  # noqa: E501
    if not isinstance(tree, Mapping):
        raise ValueError(f"a run config must be a mapping; received {type(tree).__name__}")
    out = _normalise(copy.deepcopy(dict(tree)))
    pairs = ([(str(k), v) for k, v in overrides.items()] if isinstance(overrides, Mapping)
             else parse_overrides(overrides))
    for key, value in pairs:
        _set_dotted(out, key, value if isinstance(value, str) else copy.deepcopy(value))
    return out


_SECTIONS = {"model": "model_options", "data": "data_options"}


def _normalise(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with ``model``/``data`` sections split into a name and an options dict."""
    tree = {str(k): v for k, v in tree.items()}
    for section, options_key in _SECTIONS.items():
        value = tree.get(section)
        if isinstance(value, Mapping):
            options = dict(value)
            name = options.pop("name", None)
            tree[section] = name
            existing = tree.get(options_key) or {}
            if not isinstance(existing, Mapping):
                raise ValueError(
                    f"config field {options_key!r} expects a mapping; received {existing!r}"
                )
            tree[options_key] = {**existing, **options}
            if name is None:
                del tree[section]
    return tree


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if head in _SECTIONS and rest:
        if rest == "name":
            tree[head] = value
            return
        head = _SECTIONS[head]
    if not rest:
        tree[head] = value
        return
    node = tree.get(head)
    if head == "loggers" and not isinstance(node, Mapping):
        node = _loggers_mapping(_parse_text(node) if isinstance(node, _CLIValue) else node)
    if node is None:
        node = {}
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        node = dataclasses.asdict(node)
    elif isinstance(node, Mapping):
        node = dict(node)
    else:
        raise ValueError(
            f"cannot set {key!r}: config field {head!r} is not a section (it holds {node!r})"
        )
    tree[head] = node
    _set_dotted(node, rest, value)


# --------------------------------------------------------------------------- conversion


def coerce_options(
    config_cls: type, options: Mapping[str, Any], *, where: str = "options"
) -> dict[str, Any]:
    """Check ``options`` against the fields of the dataclass ``config_cls`` and convert
    each value to its field's type (strings from the command line included).

    Each option is validated by pydantic against its field's annotation (lax mode), so a
    partial set of options is checked without building the config (whose
    ``__post_init__`` runs later, with every field).

    Raises:
        ValueError: an unknown option (the valid ones are listed) or a value of the wrong
            type (field, expected type and value named).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class C:
        ...     width: int = 8
        ...     shape: tuple[int, int] = (1, 2)
        >>> coerce_options(C, {"width": "16", "shape": [3, 4]})
        {'width': 16, 'shape': (3, 4)}
    """
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}: options must be a mapping; received {options!r}")
    hints = _hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown option(s) {unknown} for {where}{hint}; valid options: {sorted(names)}"
        )
    return {k: coerce(v, hints.get(k, Any), f"{where} option {k!r}") for k, v in options.items()}


def coerce(value: Any, tp: Any, where: str = "value") -> Any:
    """Convert ``value`` to the type annotation ``tp`` (pydantic, lax) or raise ``ValueError``.

    Strings are read as the command line means them (``"1e-3"`` → 0.001, ``"2e5"`` → 200000
    for an ``int``, ``"true"`` → True, ``"none"`` → None, ``"1,2"`` → ``(1, 2)``).

    Example:
        >>> coerce("2e5", int, "steps")
        200000
        >>> coerce("abc", int, "steps")
        Traceback (most recent call last):
        ...
        ValueError: config field 'steps' expects int; received 'abc' (str)
    """
    label = where if " option " in where or where == "value" else f"config field {where!r}"
    try:
        return _adapter(tp).validate_python(_prepare(value, tp))
    except ValidationError as exc:
        raise ValueError(_explain(exc, tp, value, label=label)) from None


@functools.lru_cache(maxsize=256)
def _cached_adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _adapter(tp: Any) -> TypeAdapter[Any]:
    try:
        return _cached_adapter(tp)
    except TypeError:  # an unhashable annotation
        return TypeAdapter(tp)


def _hints(cls: type) -> dict[str, Any]:
    """Field name → annotation (with its constraints) of a dataclass."""
    if is_pydantic_dataclass(cls):
        return {name: _annotated(info) for name, info in cls.__pydantic_fields__.items()}
    return typing.get_type_hints(cls, include_extras=True)


def _annotated(info: Any) -> Any:
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


# Command-line text → the structure pydantic expects. pydantic converts "100" to an int and
# "1e-3" to a float itself, but not "0.9,0.999" to a tuple, "none" to None, "2e3" to an int.
_NONE_WORDS = ("none", "null", "~", "")


class _Rejected:
    """Stands in for a bool given for a number (pydantic would read it as 0 or 1)."""

    __slots__ = ()


def _prepare(value: Any, tp: Any) -> Any:
    """``value`` with text turned into the shape ``tp`` expects; pydantic does the rest."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _prepare(value, args[0])
    if tp is Any or tp is object:
        return _parse_text(value) if isinstance(value, _CLIValue) else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, _CLIValue):  # --set loggers.wandb={project: x}
            value = _parse_text(value)
        if not isinstance(value, Mapping):
            return value
        hints = _hints(tp)
        return {k: _prepare(v, hints[k]) if k in hints else v for k, v in value.items()}
    if origin in (Union, types.UnionType):
        if value is None or (type(None) in args and isinstance(value, str)
                             and value.strip().lower() in _NONE_WORDS):
            return None
        for member in args:  # the first member that reads the value differently
            prepared = _prepare(value, member)
            if prepared is not value:
                return prepared
        return value
    if origin is Literal:
        if value in args or isinstance(value, bool):
            return value
        return next((a for a in args if isinstance(a, str) and a == str(value).strip()), value)
    if tp in (int, float) and isinstance(value, bool):
        return _Rejected()
    if tp is int and isinstance(value, str):
        return _int_text(value)
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, str):
            value = _split(value)
        if not isinstance(value, list | tuple):
            return value
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                return list(value)  # pydantic reports the length
            return [_prepare(v, a) for v, a in zip(value, args, strict=True)]
        inner = args[0] if args else Any
        return [_prepare(v, inner) for v in value]
    if origin is dict or tp is dict:
        if isinstance(value, str):
            value = _parse_text(value)
        if isinstance(value, Mapping) and len(args) == 2:
            return {k: _prepare(v, args[1]) for k, v in value.items()}
        return value
    return value


def _int_text(text: str) -> Any:
    """``"2e5"`` → 200000; text that is no whole number is left for pydantic to reject."""
    cleaned = text.strip().replace("_", "")
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        number = float(cleaned)
    except ValueError:
        return text
    return int(number) if math.isfinite(number) and number == int(number) else text


def _split(text: str) -> Any:
    """``"0.9,0.999"`` or ``"[0.9, 0.999]"`` → a list (of text or numbers); else the text."""
    stripped = text.strip()
    if stripped.startswith(("[", "(")):
        if not stripped.endswith(("]", ")")):
            return text
        parsed = _parse_text("[" + stripped[1:-1] + "]")
        return parsed if isinstance(parsed, list) else text
    if not stripped:
        return []
    return [item.strip() for item in stripped.split(",")]


def _parse_text(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- messages

_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than",
                           "less_than_equal", "finite_number", "multiple_of"})
_UNKNOWN_KEY_ERRORS = frozenset({"extra_forbidden", "unexpected_keyword_argument"})


def _explain(exc: ValidationError, root: Any, original: Any, *, label: str | None = None) -> str:
    """One sentence for pydantic's errors: the dotted key, what is expected, the value.

    Unknown keys come first (with a did-you-mean and the valid keys); of one field's
    errors, a range error beats a type error (the value had a right type, not a right size).
    """
    errors = exc.errors()
    first = min(errors, key=lambda e: e["type"] not in _UNKNOWN_KEY_ERRORS)
    names, tp, info, rest = _locate(root, first["loc"])
    if first["type"] in _UNKNOWN_KEY_ERRORS and rest:
        return _unknown_key(names, tp, str(rest[0]))
    if first["type"] == "missing" and not rest:
        return f"config key {'.'.join(names)!r} is required"
    same = [e for e in errors if _locate(root, e["loc"])[0] == names]
    error = next((e for e in same if e["type"] in _RANGE_ERRORS), first)
    label = label or f"config field {'.'.join(names)!r}"
    value = _lookup(original, names, default=error.get("input"))
    if error["type"] in ("value_error", "assertion_error"):
        reason = error.get("ctx", {}).get("error", error["msg"])
        return str(reason) if isinstance(reason, _Verbatim) else f"{label} {reason}"
    if error["type"] in _RANGE_ERRORS:
        metadata = info.metadata if info is not None else ()
        return f"{label} must {_range_text(tp, metadata)}; received {value!r}"
    kind = "str" if isinstance(value, str) else type(value).__name__
    return f"{label} expects {_type_name(tp)}; received {value!r} ({kind})"


def _fields(tp: Any) -> dict[str, Any]:
    if typing.get_origin(tp) in (Union, types.UnionType):  # an optional section
        tp = next((a for a in typing.get_args(tp) if is_pydantic_dataclass(a)), None)
    return dict(tp.__pydantic_fields__) if is_pydantic_dataclass(tp) else {}


def _locate(root: Any, loc: tuple[Any, ...]) -> tuple[list[str], Any, Any, tuple[Any, ...]]:
    """The field names an error location starts with, that field's annotation and
    ``FieldInfo``, and the rest of the location (union members, item indices)."""
    names: list[str] = []
    tp, info = root, None
    for i, part in enumerate(loc):
        fields = _fields(tp)
        if part not in fields:
            return names, tp, info, tuple(loc[i:])
        names.append(part)
        info = fields[part]
        tp = info.annotation
    return names, tp, info, ()


def _lookup(tree: Any, names: list[str], default: Any) -> Any:
    for name in names:
        if not isinstance(tree, Mapping) or name not in tree:
            return default
        tree = tree[name]
    return tree


def _unknown_key(names: list[str], tp: Any, key: str) -> str:
    prefix = "".join(f"{n}." for n in names)
    valid = list(_fields(tp))
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    return (f"unknown config key {prefix + key!r}{hint}; valid keys: "
            f"{', '.join(prefix + f for f in valid)}")


def _range_text(tp: Any, metadata: Iterable[Any]) -> str:
    """The allowed range of a field, from its constraints: "be an integer ≥ 1",
    "be a finite number > 0 or null", "lie in [0, 1)"."""
    bounds: dict[str, Any] = {}
    flags = {"finite": False, "integer": False}

    def visit(t: Any, meta: Iterable[Any] = ()) -> None:
        for m in meta:
            for inner in getattr(m, "metadata", None) or (m,):  # a FieldInfo holds several
                for key in ("ge", "gt", "le", "lt"):
                    if getattr(inner, key, None) is not None:
                        bounds[key] = getattr(inner, key)
                if getattr(inner, "allow_inf_nan", None) is False:
                    flags["finite"] = True
        if typing.get_origin(t) is Annotated:
            base, *more = typing.get_args(t)
            visit(base, more)
        elif t is int:
            flags["integer"] = True
        elif typing.get_origin(t) is not Literal:
            for arg in typing.get_args(t):
                visit(arg)

    visit(tp, metadata)
    low = next(((k, bounds[k]) for k in ("ge", "gt") if k in bounds), None)
    high = next(((k, bounds[k]) for k in ("le", "lt") if k in bounds), None)
    kind = ("an integer" if flags["integer"]
            else "a finite number" if flags["finite"] else "a number")
    symbol = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    if low and high:
        text = (f"lie in {'[' if low[0] == 'ge' else '('}{low[1]:g}, "
                f"{high[1]:g}{']' if high[0] == 'le' else ')'}")
    elif low or high:
        key, bound = low or high  # type: ignore[misc]
        text = f"be {kind} {symbol[key]} {bound:g}"
    else:
        text = f"be {kind}"
    if type(None) in typing.get_args(tp):
        text += " or null"
    return text


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _type_name(typing.get_args(tp)[0])
    if tp is Any:
        return "any value"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        args = ", ".join(
            "..." if a is Ellipsis else _type_name(a) for a in typing.get_args(tp)
        )
        return f"{origin.__name__}[{args}]" if args else origin.__name__
    return getattr(tp, "__name__", str(tp))
