"""The run configuration: what to train, on what, for how long, and how.

A :class:`RunConfig` is plain data. It is read from a YAML or JSON file and/or built from
keyword arguments, changed with dotted overrides (``--set model.weight_decay=0.1``), checked
field by field, and written into every run directory as ``config.json`` with every default
spelled out.

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

``model`` and ``data`` may also be sections, ``model: {name: qlae, weight_decay: 0.1}``.
Dotted keys address sections: ``model.X`` is ``model_options.X``, ``data.X`` is
``data_options.X``, ``optimizer.X`` and ``eval.X`` are fields of :class:`OptimizerConfig`
and :class:`EvalConfig`, and ``model.name``/``data.name`` are the registry names.

Values given as strings (the command line's ``--set key=value``) are converted to the
field's type: ``"100"`` for an ``int``, ``"1e-3"`` for a ``float``, ``"true"`` for a
``bool``, ``"none"``/``"null"`` for an optional field, ``"0.9,0.999"`` or ``"[0.9, 0.999]"``
for a tuple or list. A value that does not fit raises ``ValueError`` naming the field, the
expected type and the value; an unknown key raises ``ValueError`` listing the valid ones.

Example:
    >>> cfg = RunConfig.from_dict({"model": "m", "data": "d"}, overrides=["steps=100"],
    ...                           check_names=False)
    >>> cfg.steps, cfg.batch_size, cfg.precision
    (100, 64, '32')
    >>> RunConfig.from_dict({"model": "m", "data": "d", "stepz": 1}, check_names=False)
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'stepz' (did you mean 'steps'?); valid keys: ...
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

__all__ = [
    "ACCELERATORS",
    "LOGGERS",
    "OPTIMIZERS",
    "PRECISIONS",
    "EvalConfig",
    "OptimizerConfig",
    "RunConfig",
    "coerce",
    "coerce_options",
    "load_config",
    "parse_overrides",
]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu")
LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")
OPTIMIZERS = ("adam", "adamw", "sgd")
SAMPLINGS = ("auto", "uniform", "epoch", "factors")
EVAL_MODES = ("reference", "fast")


@dataclass
class OptimizerConfig:
    """Optimiser settings applied to every parameter group of the model's main step.

    ``None`` (the default of each field) means "the model's choice": the value the model's
    ``param_groups()`` sets for that group (e.g. QLAE's AdamW with weight decay on weights
    and plain Adam on biases and codebook values), else the fallback in brackets. A value
    set here overrides every main group. Extra steps (critics, discriminators) keep the
    settings their ``ExtraStep.optimizer`` declares.
    """

    name: Literal["adam", "adamw", "sgd"] | None = None  # optimiser family [adamw]
    betas: tuple[float, float] | None = None  # Adam/AdamW betas [(0.9, 0.999)]
    eps: float | None = None  # Adam/AdamW epsilon [1e-8]
    weight_decay: float | None = None  # coupled (adam/sgd) or decoupled (adamw) decay [0]
    momentum: float | None = None  # SGD momentum [0]
    clip_value: float | None = None  # element-wise gradient value clipping [none]


@dataclass
class EvalConfig:
    """How a finished run is scored (``disentkit train`` evaluates at the end)."""

    n_samples: int = 10_000  # factor configurations sampled and rendered for the metrics
    metrics: list[str] | None = None  # metric registry names; None: the default suite
    mode: Literal["reference", "fast"] = "reference"  # metric settings
    seed: int = 0  # seed of the sampled factors, of sampled representations and metrics
    batch_size: int = 256  # images per encoder call during evaluation
    n_bootstrap: int = 0  # bootstrap replicates for confidence intervals (0: none)
    baselines: bool = False  # also score the factors themselves and random latents
    # per-metric keyword options for every scored representation, after the mode's fast
    # options (explicit options win), e.g. {"infomec": {"protocol": "training"}}
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    every: int = 0  # during training, score the model every N steps (0: off)
    every_n_samples: int = 2000  # samples for the during-training scores
    every_metrics: list[str] | None = None  # during-training metrics; None: infomec, dci, mig
    every_mode: Literal["reference", "fast"] = "fast"  # metric mode during training


@dataclass
class RunConfig:
    """Everything that defines a training run (see the module docstring for the layout)."""

    model: str  # model registry name
    data: str  # dataset registry name
    model_options: dict[str, Any] = field(default_factory=dict)  # model config fields
    data_options: dict[str, Any] = field(default_factory=dict)  # dataset factory options
    steps: int = 10_000  # optimisation iterations (reference runs: 2e5 and more)
    batch_size: int = 64  # images per iteration, over all devices
    seed: int = 0  # seeds torch's RNG (initialisation, sampling) and the batches
    lr: float | None = None  # learning rate of every main group; None: the model's or 1e-3
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)  # see the class
    sampling: Literal["auto", "uniform", "epoch", "factors"] = "auto"  # batch sampling rule
    num_workers: int = 0  # batch-producing worker processes (batches do not depend on it)
    checkpoint_every: int = 1000  # write checkpoints/last.ckpt every this many steps
    log_every: int = 100  # write averaged losses to log/metrics.csv every this many steps
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"  # Lightning precision
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"  # Lightning accelerator
    devices: int | Literal["auto"] = 1  # devices (processes) to train on; >1: DDP
    strategy: str = "auto"  # Lightning strategy ("auto", "ddp", ...)
    deterministic: bool = False  # torch.use_deterministic_algorithms during training
    loggers: list[str] = field(default_factory=lambda: ["csv"])  # + tensorboard/mlflow/wandb
    eval: EvalConfig = field(default_factory=EvalConfig)  # see the class

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        overrides: Iterable[str] | Mapping[str, Any] = (),
        *,
        check_names: bool = True,
    ) -> RunConfig:
        """Build a checked config from a (nested) dict plus dotted overrides.

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
        tree = _normalise(data)
        pairs = parse_overrides(overrides) if not isinstance(overrides, Mapping) else [
            (str(k), v) for k, v in overrides.items()
        ]
        for key, value in pairs:
            _set_dotted(tree, key, value)
        config = _build(cls, tree, prefix="")
        config._check(check_names=check_names)
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly nested dict (tuples become lists); ``from_dict`` reads it back."""
        return _jsonable(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with top-level fields changed and checked (names are not looked up)."""
        new = dataclasses.replace(self, **changes)
        return RunConfig.from_dict(new.to_dict(), check_names=False)

    # -- checks --------------------------------------------------------------------------
    def _check(self, *, check_names: bool) -> None:
        _positive(self.steps, "steps", minimum=1)
        _positive(self.batch_size, "batch_size", minimum=1)
        _positive(self.seed, "seed", minimum=0)
        _positive(self.num_workers, "num_workers", minimum=0)
        _positive(self.checkpoint_every, "checkpoint_every", minimum=1)
        _positive(self.log_every, "log_every", minimum=1)
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"config field 'lr' must be a finite number > 0; received {self.lr!r}")
        if isinstance(self.devices, int):
            _positive(self.devices, "devices", minimum=1)
        opt = self.optimizer
        for name in ("eps", "weight_decay", "momentum"):
            value = getattr(opt, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"config field 'optimizer.{name}' must be a finite number ≥ 0 or null; "
                    f"received {value!r}"
                )
        if opt.clip_value is not None and not (
            math.isfinite(opt.clip_value) and opt.clip_value > 0
        ):
            raise ValueError(
                f"config field 'optimizer.clip_value' must be a number > 0 or null; "
                f"received {opt.clip_value!r}"
            )
        if opt.betas is not None and not all(0 <= b < 1 for b in opt.betas):
            raise ValueError(
                f"config field 'optimizer.betas' must lie in [0, 1); received {list(opt.betas)}"
            )
        _positive(self.eval.n_samples, "eval.n_samples", minimum=2)
        _positive(self.eval.seed, "eval.seed", minimum=0)
        _positive(self.eval.batch_size, "eval.batch_size", minimum=1)
        unknown = [lg for lg in self.loggers if lg not in LOGGERS]
        if unknown:
            raise ValueError(
                f"config field 'loggers' takes names from {list(LOGGERS)}; received {unknown}"
            )
        # CSV logging is always on; keep the order given, without duplicates.
        self.loggers = list(dict.fromkeys(["csv", *self.loggers]))
        if not self.strategy:
            raise ValueError("config field 'strategy' must be a Lightning strategy name")
        if self.eval.metrics is not None:
            from disentkit.metrics import METRICS

            if not self.eval.metrics:
                raise ValueError("config field 'eval.metrics' must name at least one metric "
                                 "or be null (the default suite)")
            for name in self.eval.metrics:
                METRICS[name]  # raises, listing the known metrics
            self.eval.metrics = list(dict.fromkeys(self.eval.metrics))
        if check_names:
            from disentkit.data import DATASETS
            from disentkit.models import MODELS

            info = MODELS[self.model]
            DATASETS[self.data]
            self.model_options = coerce_options(
                info.config_cls, self.model_options, where=f"model {self.model!r}"
            )


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    check_names: bool = True,
    **fields: Any,
) -> RunConfig:
    """Read a run config from a YAML/JSON file (optional), then apply fields and overrides.

    Args:
        path: ``.yaml``/``.yml``/``.json`` file; ``None`` starts from ``fields`` alone.
        overrides: dotted ``"key=value"`` strings applied last.
        check_names: see :meth:`RunConfig.from_dict`.
        fields: top-level values (``model=``, ``steps=``, ...) applied after the file and
            before ``overrides``; ``None`` values are ignored.

    Example:
        >>> load_config(model="m", data="d", steps=5, check_names=False).steps
        5
    """
    tree: dict[str, Any] = {}
    if path is not None:
        tree = read_config_file(path)
    tree = _normalise(tree)
    for key, value in fields.items():
        if value is not None:
            _set_dotted(tree, key, value)
    return RunConfig.from_dict(tree, overrides, check_names=check_names)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping stored in a YAML or JSON config file (``ValueError`` if unreadable)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read config file {str(p)!r}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            content = json.loads(text)
        else:
            import yaml

            content = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        raise ValueError(f"cannot parse config file {str(p)!r}: {exc}") from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ValueError(
            f"config file {str(p)!r} must hold a mapping of keys to values; received "
            f"{type(content).__name__}"
        )
    return content


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


_SECTIONS = {"model": "model_options", "data": "data_options"}


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Copy ``data`` with ``model``/``data`` sections split into a name and an options dict."""
    tree = {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for section, options_key in _SECTIONS.items():
        value = tree.get(section)
        if isinstance(value, dict):
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
        head, rest = _SECTIONS[head], rest
    if not rest:
        tree[head] = value
        return
    node = tree.get(head)
    if node is None:
        node = {}
    elif not isinstance(node, dict):
        if dataclasses.is_dataclass(node):
            node = dataclasses.asdict(node)
        elif isinstance(node, Mapping):
            node = dict(node)
        else:
            raise ValueError(
                f"cannot set {key!r}: config field {head!r} is not a section (it holds "
                f"{node!r})"
            )
    tree[head] = node
    _set_dotted(node, rest, value)


# --------------------------------------------------------------------------- coercion


def _build(cls: type, tree: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in tree if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown config key {prefix + key!r}{hint}; valid keys: "
            f"{', '.join(prefix + f for f in fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        where = prefix + name
        if name not in tree:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"config key {where!r} is required")
            continue
        value = tree[name]
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            if isinstance(value, tp):
                value = dataclasses.asdict(value)
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"config field {where!r} expects a mapping of {tp.__name__} fields; "
                    f"received {value!r}"
                )
            kwargs[name] = _build(tp, value, prefix=where + ".")
        else:
            kwargs[name] = coerce(value, tp, where)
    return cls(**kwargs)


def coerce_options(
    config_cls: type, options: Mapping[str, Any], *, where: str = "options"
) -> dict[str, Any]:
    """Check ``options`` against the fields of the dataclass ``config_cls`` and convert
    each value to its field's type (strings from the command line included).

    Raises:
        ValueError: an unknown option (the valid ones are listed) or a value of the wrong
            type (field, expected type and value named).

    Example:
        >>> @dataclass
        ... class C:
        ...     width: int = 8
        ...     shape: tuple[int, int] = (1, 2)
        >>> coerce_options(C, {"width": "16", "shape": [3, 4]})
        {'width': 16, 'shape': (3, 4)}
    """
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}: options must be a mapping; received {options!r}")
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown option(s) {unknown} for {where}{hint}; valid options: {sorted(names)}"
        )
    return {k: coerce(v, hints.get(k, Any), f"{where} option {k!r}") for k, v in options.items()}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any value"
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


class _Mismatch(Exception):
    pass


def coerce(value: Any, tp: Any, where: str = "value") -> Any:
    """Convert ``value`` to the type annotation ``tp`` or raise ``ValueError``.

    Supports ``int``, ``float``, ``bool``, ``str``, ``Literal``, optional and other unions,
    ``tuple[...]``, ``list[...]``, ``dict[...]`` and ``Any``. Strings are converted
    (``"1e-3"`` → 0.001, ``"true"`` → True, ``"none"`` → None, ``"1,2"`` → ``(1, 2)``).

    Example:
        >>> coerce("2e5", int, "steps")
        200000
        >>> coerce("abc", int, "steps")
        Traceback (most recent call last):
        ...
        ValueError: config field 'steps' expects int; received 'abc' (str)
    """
    try:
        return _coerce(value, tp)
    except _Mismatch:
        label = where if " option " in where or where == "value" else f"config field {where!r}"
        raise ValueError(
            f"{label} expects {_type_name(tp)}; received {value!r} ({type(value).__name__})"
        ) from None


_NONE_WORDS = ("none", "null", "~", "")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def _parse_text(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _coerce(value: Any, tp: Any) -> Any:
    if tp is Any or tp is object:
        if isinstance(value, _CLIValue):
            return _parse_text(str(value))
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if type(None) in args and (
            value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS)
        ):
            return None
        for arg in args:  # first matching member wins
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        for a in args:
            if type(a) is type(value) and a == value:
                return a
        return _literal_by_text(value, args)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)
            except ValueError:
                pass
            try:
                f = float(text)
            except ValueError:
                raise _Mismatch from None
            if math.isfinite(f) and f == int(f):
                return int(f)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip().replace("_", ""))
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return str(value)
        raise _Mismatch
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        items = _as_sequence(value)
        if origin is tuple or tp is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                inner = args[0] if args else Any
                return tuple(_coerce(v, inner) for v in items)
            if len(items) != len(args):
                raise _Mismatch
            return tuple(_coerce(v, a) for v, a in zip(items, args, strict=True))
        inner = args[0] if args else Any
        return [_coerce(v, inner) for v in items]
    if origin is dict or tp is dict or origin is Mapping:
        if isinstance(value, str):
            value = _parse_text(value)
        if not isinstance(value, Mapping):
            raise _Mismatch
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt): _coerce(v, vt) for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value  # an annotation we do not model: accept as is


def _literal_by_text(value: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, bool):
        raise _Mismatch
    text = str(value).strip()
    for a in args:
        if str(a) == text:
            return a
    raise _Mismatch


def _as_sequence(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "(")):
            parsed = _parse_text("[" + text[1:-1] + "]") if text.endswith(("]", ")")) else None
            if isinstance(parsed, list):
                return parsed
            raise _Mismatch
        if not text:
            return []
        return [v.strip() for v in text.split(",")]
    if isinstance(value, list | tuple):
        return list(value)
    raise _Mismatch


def _positive(value: int, name: str, *, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"config field {name!r} must be an integer ≥ {minimum}; "
                         f"received {value!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "item") and callable(value.item):  # numpy/torch scalars
        return value.item()
    return value
