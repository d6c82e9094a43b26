"""Training: run configuration, the trainer, run directories and shareable weights.

- :class:`RunConfig` / :func:`build_config` / :func:`load_config`: what to train and how
  (YAML/JSON + overrides), validated once and frozen; :func:`resolve_config` writes the
  model's defaults out.
- :func:`fit`: train and write a run directory (``config.json``, ``checkpoints/last.ckpt``,
  ``log/metrics.csv``, ``model.safetensors`` + ``model.json``); exact resume.
- :func:`fit_vectorized`: train K runs (seeds, hyper-parameters) as one vectorised model,
  one ordinary run directory each (:mod:`disentkit.train.vectorized`).
- :func:`evaluate_run`: score a run's model, write ``metrics.json``.
- :class:`LoggersConfig` / :func:`log_run_outputs`: experiment trackers (TensorBoard,
  MLflow, W&B) beside ``log/metrics.csv``; a finished run's scores and figures sent to
  them (:mod:`disentkit.train.trackers`).
- :func:`load_model` / :func:`save_model` / :func:`read_model_info`: weights as safetensors +
  JSON, never pickle. They live in :mod:`disentkit.models.saved` (also
  ``disentkit.models.load_model``) and are reachable here too.

Importing this package does not import torch or Lightning; calling these functions does
(and so does the first access to ``load_model``, ``save_model`` or ``read_model_info``,
which imports the models).
"""

from typing import Any

from disentkit.train.config import (
    EvalConfig,
    LoggersConfig,
    OptimizerConfig,
    RunConfig,
    build_config,
    load_config,
    resolve_config,
)
from disentkit.train.evaluate_run import evaluate_run
from disentkit.train.trackers import log_run_outputs
from disentkit.train.trainer import fit
from disentkit.train.vectorized import fit_vectorized

__all__ = [
    "EvalConfig",
    "LoggersConfig",
    "OptimizerConfig",
    "RunConfig",
    "build_config",
    "evaluate_run",
    "fit",
    "fit_vectorized",
    "load_config",
    "load_model",
    "log_run_outputs",
    "read_model_info",
    "resolve_config",
    "save_model",
]

_SAVED_MODEL_NAMES = ("load_model", "read_model_info", "save_model")


def __getattr__(name: str) -> Any:
    # the saved-model functions belong to disentkit.models, which imports torch: resolved
    # on first use so that importing disentkit.train stays light
    if name in _SAVED_MODEL_NAMES:
        from disentkit.models import saved

        return getattr(saved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
