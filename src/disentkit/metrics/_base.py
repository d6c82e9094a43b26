"""The metric registry, result dataclasses and metric IDs.

Every metric is a pure function ``metric(latents, factors, *, options) -> result`` registered
in :data:`METRICS` with its metadata. Results are frozen dataclasses holding the scores, the
diagnostics, the options used and a versioned metric ID such as ``dci/gbt@1``: the ID
changes whenever an option changes the number, so scores with the same ID are comparable.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from disentkit._atomic import jsonable
from disentkit.registry import Registry

Bounds = tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class MetricResult:
    """Base class of every metric result.

    Subclasses add their score fields (listed in ``SCORES``) and diagnostics.

    Attributes:
        metric_id: versioned ID naming the metric and the estimator choices, e.g. ``mig/hist20@1``.
        options: every option that influenced the value, as passed or defaulted.
        n_samples: number of rows used.
        skipped_factors: indices of factors skipped because they take a single value.
    """

    SCORES: ClassVar[tuple[str, ...]] = ()
    #: score name → name of the ``(K,)`` field holding that score factor by factor, for the
    #: scores that decompose over factors (e.g. MIG's gap per factor)
    PER_FACTOR: ClassVar[dict[str, str]] = {}

    metric_id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    n_samples: int = 0
    skipped_factors: tuple[int, ...] = ()

    def scores(self) -> dict[str, float]:
        """The headline scores as Python floats, keyed by score name."""
        return {name: float(getattr(self, name)) for name in self.SCORES}

    def factor_scores(self) -> dict[str, np.ndarray]:
        """Per-factor values ``(K,)`` of the scores that decompose over factors (kept factors,
        in the order of the user's columns without ``skipped_factors``)."""
        return {
            score: np.asarray(getattr(self, name), dtype=np.float64)
            for score, name in self.PER_FACTOR.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-friendly dict: scores, metric ID, options and sample counts.

        Array diagnostics are converted to nested lists.
        """
        out: dict[str, Any] = {"metric_id": self.metric_id}
        out.update(self.scores())
        out["n_samples"] = int(self.n_samples)
        out["skipped_factors"] = list(self.skipped_factors)
        for key, value in self.options.items():
            out[f"options.{key}"] = jsonable(value)
        for f in dataclasses.fields(self):
            if f.name in out or f.name in ("options", "SCORES") or f.name in self.SCORES:
                continue
            out[f.name] = jsonable(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class ScoreInfo:
    """Metadata of one score a metric reports.

    Attributes:
        name: field name on the result.
        bounds: the closed interval every value lies in.
        higher_is_better: direction of improvement.
        zero_when_independent: the definition gives ≈0 for latents independent of the
            factors (MIG, DCI D/C, SAP); False where the null level is documented as
            non-zero (modularity ≈0.8, InfoM/InfoC ≈0.5).
        label: the short name tables and reports show (``"InfoM"``, ``"DCI-D"``); None:
            the score's key (:func:`~disentkit.metrics.score_label`).
    """

    name: str
    bounds: Bounds = (0.0, 1.0)
    higher_is_better: bool = True
    zero_when_independent: bool = False
    label: str | None = None


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric and its metadata.

    Attributes:
        name: registry name.
        func: the metric function.
        scores: the scores it reports.
        version: bumped when the definition or a default changes the numbers.
        kind: ``"array"`` for ``metric(latents, factors)``; ``"sampling"`` for metrics that
            draw observations from a factor sampler.
        needs_discrete_latents: the metric is defined for discrete latents only.
        in_default_suite: computed by :func:`disentkit.evaluate` when no list is given.
        fast_options: option overrides applied under ``mode="fast"``.
        reference: where the reference definition comes from.
        index_options: options for latents that are labels rather than numbers (codebook
            indices): e.g. the plug-in MI estimator on the labels instead of binning their
            values. Empty when the metric reads every latent as a number.
        option_names: the keyword options ``func`` accepts, read from its signature once at
            registration (for sampling metrics without the sampler and representation).
        uses_mi_cache: ``func`` takes ``mi=`` and so can share mutual-information estimates.
    """

    name: str
    func: Callable[..., MetricResult]
    scores: tuple[ScoreInfo, ...]
    version: int = 1
    kind: Literal["array", "sampling"] = "array"
    needs_discrete_latents: bool = False
    in_default_suite: bool = True
    fast_options: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""
    index_options: Mapping[str, Any] = field(default_factory=dict)
    option_names: tuple[str, ...] = ()
    uses_mi_cache: bool = False

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scores)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless every key of ``options`` is an option of this metric.

        The message names the metric, the unknown options (with the closest known name)
        and every known option.

        Example:
            >>> import disentkit.metrics
            >>> METRICS["mig"].check_options({"nbins": 5})  # doctest: +NORMALIZE_WHITESPACE
            Traceback (most recent call last):
            ...
            ValueError: unknown option 'nbins' for metric 'mig' (did you mean 'n_bins'?);
            known options: estimator, n_bins, n_neighbors, seed
        """
        if not isinstance(options, Mapping):
            raise TypeError(
                f"options of metric {self.name!r} must be a mapping of option names to "
                f"values; received {type(options).__name__}"
            )
        unknown = [k for k in options if k not in self.option_names and not self._internal(k)]
        if not unknown:
            return
        close = {
            key: match[0]
            for key in unknown
            if (match := difflib.get_close_matches(str(key), self.option_names, n=1))
        }
        if len(unknown) == 1 and close:
            hint = f" (did you mean {close[unknown[0]]!r}?)"
        elif close:
            hint = " (did you mean " + ", ".join(
                f"{v!r} for {k!r}" for k, v in close.items()) + "?)"
        else:
            hint = ""
        noun = "option" if len(unknown) == 1 else "options"
        names = ", ".join(repr(k) for k in unknown)
        known = ", ".join(self.option_names) or "(none)"
        raise ValueError(
            f"unknown {noun} {names} for metric {self.name!r}{hint}; known options: {known}"
        )

    def _internal(self, key: object) -> bool:
        """``mi``: a shared estimate, accepted but not listed as an option."""
        return key == "mi" and self.uses_mi_cache


#: Every registered metric, by name (:class:`MetricInfo` entries); ``disentkit metrics``
#: lists them.
METRICS: Registry[MetricInfo] = Registry("metric")


def register_metric(
    name: str,
    *,
    scores: tuple[ScoreInfo, ...],
    version: int = 1,
    kind: Literal["array", "sampling"] = "array",
    needs_discrete_latents: bool = False,
    in_default_suite: bool = True,
    fast_options: Mapping[str, Any] | None = None,
    reference: str = "",
    index_options: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Register a metric function under ``name`` with its metadata (decorator).

    The function's keyword options are read from its signature here, once; ``fast_options``
    and ``index_options`` must use them (a misspelt one fails at import).
    """

    def decorator(func: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        option_names, uses_mi = _signature_options(func)
        info = MetricInfo(
            name=name,
            func=func,
            scores=scores,
            version=version,
            kind=kind,
            needs_discrete_latents=needs_discrete_latents,
            in_default_suite=in_default_suite,
            fast_options=dict(fast_options or {}),
            reference=reference,
            index_options=dict(index_options or {}),
            option_names=option_names,
            uses_mi_cache=uses_mi,
        )
        info.check_options(info.fast_options)
        info.check_options(info.index_options)
        METRICS.add(name, info)
        return func

    return decorator


#: leading parameters of every metric function, which are data, not options:
#: ``(latents, factors)`` for array metrics, ``(sampler, representation)`` for sampling ones
_N_DATA_PARAMS = 2


def score_label(key: str) -> str:
    """The short label of a score key, as its metric declares it (:attr:`ScoreInfo.label`):
    ``"infomec.infom"`` → ``"InfoM"``, ``"mig"`` (a one-score metric) → ``"MIG"``; a
    ``score.`` prefix (a results-table column) is dropped; keys without a label come back
    as given.

    Example:
        >>> score_label("infomec.infom"), score_label("score.dci.disentanglement")
        ('InfoM', 'DCI-D')
        >>> score_label("dci.informativeness_train")
        'dci.informativeness_train'
    """
    short = key.removeprefix("score.")
    metric, _, score = short.partition(".")
    info = METRICS.get(metric)
    if info is not None:
        for s in info.scores:
            if s.name == (score or "score") and s.label is not None:
                return s.label
    return short


def _signature_options(func: Callable[..., MetricResult]) -> tuple[tuple[str, ...], bool]:
    """The option names of ``func`` (its parameters after the two data arguments, ``mi``
    left out) and whether it takes ``mi``."""
    params = list(inspect.signature(func).parameters.values())
    names = [
        p.name
        for p in params[_N_DATA_PARAMS:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    uses_mi = "mi" in names
    return tuple(n for n in names if n != "mi"), uses_mi


def metric_id(name: str, variant: str = "") -> str:
    """The versioned ID of a registered metric: ``name/variant@version``.

    Example:
        >>> import disentkit.metrics
        >>> metric_id("mig", "hist20")
        'mig/hist20@1'
    """
    version = METRICS[name].version
    return f"{name}/{variant}@{version}" if variant else f"{name}@{version}"
