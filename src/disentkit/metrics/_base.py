"""The metric registry, result dataclasses and metric IDs.

Every metric is a pure function ``metric(latents, factors, *, options) -> result`` registered
in :data:`METRICS` with its metadata. Results are frozen dataclasses holding the scores, the
diagnostics, the options used and a versioned metric ID such as ``dci/gbt@1``: the ID
changes whenever an option changes the number, so scores with the same ID are comparable.
"""

from __future__ import annotations

import dataclasses
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
    """

    name: str
    bounds: Bounds = (0.0, 1.0)
    higher_is_better: bool = True
    zero_when_independent: bool = False


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

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scores)


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
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Register a metric function under ``name`` with its metadata (decorator)."""

    def decorator(func: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        METRICS.add(
            name,
            MetricInfo(
                name=name,
                func=func,
                scores=scores,
                version=version,
                kind=kind,
                needs_discrete_latents=needs_discrete_latents,
                in_default_suite=in_default_suite,
                fast_options=dict(fast_options or {}),
                reference=reference,
            ),
        )
        return func

    return decorator


def metric_id(name: str, variant: str = "") -> str:
    """The versioned ID of a registered metric: ``name/variant@version``.

    Example:
        >>> import disentkit.metrics
        >>> metric_id("mig", "hist20")
        'mig/hist20@1'
    """
    version = METRICS[name].version
    return f"{name}/{variant}@{version}" if variant else f"{name}@{version}"
