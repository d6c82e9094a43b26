"""Properties every registered sampling metric declares, checked over the whole registry.

The sampling-metric counterpart of ``tests/metrics/test_common.py``: each metric of kind
``"sampling"`` gets the same checks — metadata, Python floats within the declared bounds,
the options recorded in the result, determinism for a seed, a perfect representation
beating one independent of the observations, and named errors for bad samplers and bad
representation outputs. A new sampling metric is checked the day it is registered; it
needs an entry in :data:`SMALL` (the options that keep it fast), or the checks fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from disentkit import DisentkitWarning
from disentkit.metrics import METRICS, MetricResult
from disentkit.metrics.sampling import IdentityFactors

SAMPLING_METRICS = sorted(n for n, i in METRICS.items() if i.kind == "sampling")
SIZES = (3, 4, 5)
#: per metric, options that keep these checks fast (a handful of points per score)
SMALL: dict[str, dict] = {
    "beta_vae": {"n_train": 200, "n_eval": 100, "batch_size": 8},
    "factor_vae": {"n_train": 200, "n_eval": 100, "batch_size": 8, "n_variance_estimate": 300},
}


def _options(name: str) -> dict:
    if name not in SMALL:
        pytest.fail(f"sampling metric {name!r} has no small options in {__file__}: add them")
    return SMALL[name]


def _run(name: str, representation, sampler=None, **kwargs) -> MetricResult:
    sampler = IdentityFactors(SIZES) if sampler is None else sampler
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation/convergence noise from any metric
        warnings.simplefilter("ignore", DisentkitWarning)
        return METRICS[name].func(sampler, representation, seed=0,
                                  **{**_options(name), **kwargs})


def identity(x: np.ndarray) -> np.ndarray:
    return x


def independent(x: np.ndarray) -> np.ndarray:
    """Latents that depend on nothing observed (a fixed stream, reseeded per call size)."""
    return np.random.default_rng(len(x)).standard_normal((len(x), 4))


def test_registry_holds_the_sampling_metrics() -> None:
    assert {"beta_vae", "factor_vae"} <= set(SAMPLING_METRICS)


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_metadata_is_complete(name: str) -> None:
    info = METRICS[name]
    assert info.scores and info.reference
    assert info.func.__doc__ and "Example" in info.func.__doc__
    assert all(s.bounds[0] < s.bounds[1] for s in info.scores)
    assert not info.index_options  # sampling metrics see observations, not stored indices
    assert set(_options(name)) <= set(info.option_names)


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_scores_are_floats_within_bounds_and_options_are_recorded(name: str) -> None:
    result = _run(name, identity)
    assert result.metric_id.startswith(f"{name}/") and "@" in result.metric_id
    scores = result.scores()
    assert set(scores) == set(METRICS[name].score_names)
    for s in METRICS[name].scores:
        value = scores[s.name]
        assert type(value) is float and np.isfinite(value), (s.name, value)
        assert s.bounds[0] - 1e-9 <= value <= s.bounds[1] + 1e-9, (s.name, value)
    flat = result.to_dict()
    for key, value in _options(name).items():
        assert flat[f"options.{key}"] == value


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_deterministic_for_a_seed(name: str) -> None:
    noisy = IdentityFactors(SIZES, noise=0.3)
    assert _run(name, identity, noisy).scores() == _run(name, identity, noisy).scores()


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_fast_options_are_accepted(name: str) -> None:
    info = METRICS[name]
    result = _run(name, identity, **{**info.fast_options, **_options(name)})
    assert result.metric_id.startswith(f"{name}/")


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_perfect_beats_independent(name: str) -> None:
    perfect = _run(name, identity).scores()
    chance = _run(name, independent).scores()
    assert perfect["score"] > chance["score"] + 0.3, (perfect, chance)


class _NoImages:
    factor_sizes = SIZES

    def sample_factors(self, n, rng):
        return rng.integers(0, 3, (n, len(SIZES)))


@pytest.mark.parametrize("name", SAMPLING_METRICS)
def test_bad_sampler_and_representation_are_named(name: str) -> None:
    with pytest.raises(TypeError, match="images_from_factors"):
        _run(name, identity, _NoImages())

    def with_nan(x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=float)
        out[0, 0] = np.nan
        return out

    with pytest.raises(ValueError, match="with_nan must return finite values"):
        _run(name, with_nan)
